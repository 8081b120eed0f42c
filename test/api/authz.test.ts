// The authorization table (SPEC §3.1 Auth, §3.2 Who): every route of this area × {anonymous,
// owner, another user, admin} → the expected status. Each cell gets a fresh fixture so a
// state change by one cell cannot decide another.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectProblemShape, type Harness, startHarness } from "./helpers.ts";

let h: Harness;
let admin: string;
beforeAll(async () => {
  h = await startHarness();
  admin = await h.token("ops-admin", "admin");
});
afterAll(async () => {
  await h?.close();
});

type Fixture = { owner: string; other: string; wallet: string };
type Who = "anonymous" | "owner" | "other" | "admin";
type Row = {
  method: string;
  path: (f: Fixture) => string;
  body?: (f: Fixture) => unknown;
  /** prepare the fixture (e.g. put the wallet in the status the action needs) */
  setup?: (f: Fixture) => Promise<void>;
  expect: Record<Who, number>;
};

async function fixture(kyc = "VERIFIED"): Promise<Fixture> {
  const [o] = await h.sql`INSERT INTO users (email, full_name, kyc_status)
    VALUES (${`o-${crypto.randomUUID()}@example.com`}, 'Owner', ${kyc}) RETURNING id`;
  const [x] = await h.sql`INSERT INTO users (email, full_name, kyc_status)
    VALUES (${`x-${crypto.randomUUID()}@example.com`}, 'Other', 'VERIFIED') RETURNING id`;
  const [w] =
    await h.sql`INSERT INTO wallets (user_id, currency, kind) VALUES (${o?.id}, 'USD', 'fiat') RETURNING id`;
  return { owner: o?.id, other: x?.id, wallet: w?.id };
}

const all = (n: number): Record<Who, number> => ({ anonymous: n, owner: n, other: n, admin: n });

const TABLE: Row[] = [
  { method: "GET", path: () => "/api/v1/currencies", expect: all(200) },
  {
    method: "POST",
    path: () => "/api/v1/users",
    body: () => ({ email: `n-${crypto.randomUUID()}@example.com`, full_name: "New" }),
    expect: all(201),
  },
  {
    method: "GET",
    path: () => "/api/v1/users",
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200 },
  },
  {
    method: "GET",
    path: (f) => `/api/v1/users/${f.owner}`,
    expect: { anonymous: 401, owner: 200, other: 404, admin: 200 },
  },
  {
    method: "POST",
    path: (f) => `/api/v1/users/${f.owner}/kyc/start`,
    setup: async (f) => {
      await h.sql`UPDATE users SET kyc_status = 'UNVERIFIED' WHERE id = ${f.owner}`;
    },
    expect: { anonymous: 401, owner: 200, other: 404, admin: 200 },
  },
  {
    method: "POST",
    path: (f) => `/api/v1/users/${f.owner}/kyc`,
    body: () => ({ approved: true }),
    setup: async (f) => {
      await h.sql`UPDATE users SET kyc_status = 'PENDING' WHERE id = ${f.owner}`;
    },
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200 },
  },
  {
    method: "POST",
    path: () => "/api/v1/wallets",
    body: (f) => ({ currency: "EUR", user_id: f.owner }),
    expect: { anonymous: 401, owner: 201, other: 403, admin: 201 },
  },
  {
    method: "GET",
    path: () => "/api/v1/wallets",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200 },
  },
  {
    method: "GET",
    path: () => "/api/v1/wallets/me",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200 },
  },
  {
    method: "GET",
    path: (f) => `/api/v1/wallets/${f.wallet}`,
    expect: { anonymous: 401, owner: 200, other: 404, admin: 200 },
  },
  {
    method: "POST",
    path: (f) => `/api/v1/wallets/${f.wallet}/suspend`,
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200 },
  },
  {
    method: "POST",
    path: (f) => `/api/v1/wallets/${f.wallet}/activate`,
    setup: async (f) => {
      await h.sql`UPDATE wallets SET status = 'SUSPENDED' WHERE id = ${f.wallet}`;
    },
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200 },
  },
  {
    method: "POST",
    path: (f) => `/api/v1/wallets/${f.wallet}/lock`,
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200 },
  },
  {
    method: "POST",
    path: (f) => `/api/v1/wallets/${f.wallet}/close`,
    expect: { anonymous: 401, owner: 200, other: 404, admin: 200 },
  },
  {
    method: "PATCH",
    path: (f) => `/api/v1/wallets/${f.wallet}/limits`,
    body: () => ({ daily_limit: "10.00" }),
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200 },
  },
];

describe("authorization table", () => {
  for (const row of TABLE) {
    for (const who of ["anonymous", "owner", "other", "admin"] as const) {
      const label = `${row.method} ${row.path({ owner: ":user", other: ":other", wallet: ":wallet" })} as ${who} → ${row.expect[who]}`;
      test(label, async () => {
        const f = await fixture();
        await row.setup?.(f);
        const token =
          who === "anonymous"
            ? undefined
            : who === "admin"
              ? admin
              : await h.token(who === "owner" ? f.owner : f.other, "user");
        const r = await h.call(row.method, row.path(f), { token, body: row.body?.(f) });
        expect(r.status).toBe(row.expect[who]);
        if (r.status >= 400) expectProblemShape(r);
        if (r.status === 401) expect(r.headers.get("www-authenticate")).toStartWith("Bearer");
      });
    }
  }

  test("a user-role check comes before ownership: another user's wallet on an admin route is 403", async () => {
    const f = await fixture();
    const r = await h.call("POST", `/api/v1/wallets/${f.wallet}/lock`, {
      token: await h.token(f.other, "user"),
    });
    expect(r.status).toBe(403);
  });

  test("bad tokens are 401 with WWW-Authenticate on every protected route", async () => {
    const f = await fixture();
    for (const row of TABLE.filter((r) => r.expect.anonymous === 401)) {
      for (const auth of ["Bearer nope", "Basic abc", `Bearer ${admin}x`]) {
        const r = await h.call(row.method, row.path(f), {
          headers: { authorization: auth },
          body: row.body?.(f),
        });
        expect(r.status).toBe(401);
        expect(r.body.code).toBe("UNAUTHORIZED");
        expect(r.headers.get("www-authenticate")).toContain("Bearer");
      }
    }
  });

  test("users see only what they own: lists never include another user's wallet", async () => {
    const f = await fixture();
    const other = await h.token(f.other, "user");
    for (const path of ["/api/v1/wallets?limit=100", "/api/v1/wallets/me?limit=100"]) {
      const r = await h.call("GET", path, { token: other });
      expect(r.body.data.some((w: { id: string }) => w.id === f.wallet)).toBe(false);
    }
  });
});

// Hostile and malformed input on every field of every route of this area: each answers a 4xx
// problem naming the field, and the database is unchanged (row counts and last update).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { counts, expectProblemShape, type Harness, startHarness } from "./helpers.ts";

let h: Harness;
let admin: string;
let userId: string;
let userToken: string;
let walletId: string;
let pendingUser: string;

beforeAll(async () => {
  h = await startHarness();
  admin = await h.token("ops-admin", "admin");
  const [u] = await h.sql`INSERT INTO users (email, full_name, kyc_status)
    VALUES ('owner@example.com', 'Owner', 'VERIFIED') RETURNING id`;
  userId = u?.id;
  userToken = await h.token(userId, "user");
  const [w] =
    await h.sql`INSERT INTO wallets (user_id, currency, kind) VALUES (${userId}, 'USD', 'fiat') RETURNING id`;
  walletId = w?.id;
  const [p] = await h.sql`INSERT INTO users (email, full_name, kyc_status)
    VALUES ('pending@example.com', 'Pending', 'PENDING') RETURNING id`;
  pendingUser = p?.id;
});
afterAll(async () => {
  await h?.close();
});

const SQLI = "x'); DROP TABLE users; --";
const NUL = "abc\u0000def";
const LONG = "a".repeat(5000);
const DEEP = JSON.parse(`${"[".repeat(40)}1${"]".repeat(40)}`);

type Case = { name: string; body: unknown; field: string };

function fieldCases(valid: Record<string, unknown>, field: string, bad: unknown[]): Case[] {
  const out: Case[] = [];
  const { [field]: _drop, ...without } = valid;
  out.push({ name: `${field} missing`, body: without, field });
  for (const v of bad)
    out.push({
      name: `${field} = ${JSON.stringify(v)?.slice(0, 40)}`,
      body: { ...valid, [field]: v },
      field,
    });
  return out;
}

const common = [null, 12345, true, [], {}, DEEP];

const ROUTES: {
  name: string;
  method: string;
  path: () => string;
  token: () => string | undefined;
  cases: () => Case[];
}[] = [
  {
    name: "POST /users",
    method: "POST",
    path: () => "/api/v1/users",
    token: () => undefined,
    cases: () => [
      ...fieldCases({ email: "new@example.com", full_name: "New" }, "email", [
        ...common,
        "",
        "   ",
        "not-an-email",
        "a@b",
        "two@@example.com",
        "sp ace@example.com",
        `${LONG}@example.com`,
        SQLI,
        `a${NUL}@example.com`,
      ]),
      ...fieldCases({ email: "new@example.com", full_name: "New" }, "full_name", [
        ...common,
        "",
        "    ",
        "x".repeat(256),
        LONG,
        NUL,
      ]),
    ],
  },
  {
    name: "POST /users/:id/kyc",
    method: "POST",
    path: () => `/api/v1/users/${pendingUser}/kyc`,
    token: () => admin,
    cases: () => [
      ...fieldCases({ approved: false, reason: "r" }, "approved", [null, "true", 1, [], {}, DEEP]),
      ...fieldCases({ approved: false, reason: "r" }, "reason", [null, 5, "", "   ", LONG, NUL, DEEP]),
    ],
  },
  {
    name: "POST /wallets",
    method: "POST",
    path: () => "/api/v1/wallets",
    token: () => admin,
    cases: () => [
      ...fieldCases({ currency: "EUR", user_id: userId }, "currency", [
        ...common,
        "",
        "usd",
        "DOGE",
        "US D",
        LONG,
        SQLI,
        NUL,
      ]),
      ...fieldCases({ currency: "EUR", user_id: userId }, "user_id", [
        null,
        5,
        "",
        "not-a-uuid",
        `${userId}x`,
        SQLI,
        NUL,
        LONG,
      ]),
    ],
  },
  {
    name: "PATCH /wallets/:id/limits",
    method: "PATCH",
    path: () => `/api/v1/wallets/${walletId}/limits`,
    token: () => admin,
    cases: () =>
      ["daily_limit", "monthly_limit"].flatMap((field) =>
        [
          5,
          1.5,
          true,
          [],
          {},
          "",
          " 1",
          "-1",
          "1e3",
          "1.001",
          "abc",
          "99999999999999999999999",
          SQLI,
          NUL,
          LONG,
          DEEP,
        ].map((v) => ({
          name: `${field} = ${JSON.stringify(v)?.slice(0, 30)}`,
          body: { [field]: v },
          field,
        })),
      ),
  },
];

describe("bad bodies", () => {
  for (const route of ROUTES) {
    test(`${route.name}: every bad field → 400 naming it, database unchanged`, async () => {
      const before = await counts(h.sql);
      for (const c of route.cases()) {
        const r = await h.call(route.method, route.path(), { token: route.token(), body: c.body });
        if (r.status !== 400) throw new Error(`${route.name} ${c.name}: ${r.status} ${r.text}`);
        expectProblemShape(r);
        expect(r.body.code).toBe("VALIDATION_ERROR");
        const fields = (r.body.errors ?? []).map((e: { field: string }) => e.field.split(".")[0]);
        // JSON nested past the parser's depth limit is refused as a whole body
        const tooDeep = JSON.stringify(c.body).includes("[".repeat(33)) && fields.includes("body");
        if (!fields.includes(c.field) && !tooDeep) {
          throw new Error(`${route.name} ${c.name}: errors name ${fields.join(",")} not ${c.field}`);
        }
        expect(r.text).not.toMatch(/postgres|syntax|SELECT|INSERT|stack|at \//i);
      }
      expect(await counts(h.sql)).toEqual(before);
    });

    test(`${route.name}: unknown field, non-object body, empty body → 400`, async () => {
      const before = await counts(h.sql);
      // {"toString": ...} as a field value cannot be stringified: Elysia's own error builder threw (500)
      const unprintable = { toString: "x", valueOf: 1 };
      for (const body of [
        { surprise: 1 },
        [],
        "str",
        5,
        null,
        { email: unprintable, full_name: unprintable },
      ]) {
        const r = await h.call(route.method, route.path(), { token: route.token(), body });
        expect(r.status).toBe(400);
      }
      const empty = await h.call(route.method, route.path(), { token: route.token() });
      expect(empty.status).toBe(400);
      expect(await counts(h.sql)).toEqual(before);
    });
  }
});

describe("bad path and query parameters", () => {
  test.each([
    ["GET", "/api/v1/users/not-a-uuid", "id"],
    ["GET", `/api/v1/users/${encodeURIComponent(SQLI)}`, "id"],
    ["POST", "/api/v1/users/123/kyc/start", "id"],
    ["GET", "/api/v1/wallets/%00", "id"],
    ["POST", "/api/v1/wallets/zzz/close", "id"],
    ["GET", "/api/v1/wallets?currency=XXX", "currency"],
    ["GET", "/api/v1/wallets?status=OPEN", "status"],
    ["GET", "/api/v1/wallets?user_id=abc", "user_id"],
    ["GET", "/api/v1/wallets?limit=0", "limit"],
    ["GET", "/api/v1/wallets?limit=101", "limit"],
    ["GET", "/api/v1/wallets?limit=99999999999999999999", "limit"],
    ["GET", "/api/v1/wallets?cursor=%27%3B--", "cursor"],
    ["GET", "/api/v1/wallets/me?cursor=eyJ4IjoxfQ", "cursor"],
    ["GET", "/api/v1/users?email=not-an-email", "email"],
  ])("%s %s → 400 on %s", async (method, path, field) => {
    const before = await counts(h.sql);
    const r = await h.call(method, path, { token: admin });
    expect(r.status).toBe(400);
    expectProblemShape(r);
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(await counts(h.sql)).toEqual(before);
  });

  test("a user's token with garbage ids is still 400, never 500", async () => {
    const r = await h.call("GET", "/api/v1/wallets/not-a-uuid", { token: userToken });
    expect(r.status).toBe(400);
  });
});

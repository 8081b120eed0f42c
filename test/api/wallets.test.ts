// Wallets (SPEC §2.3, §3.2): open, list, me, get, status machine, close, limits.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { WALLET_TRANSITIONS } from "../../src/modules/wallets/model.ts";
import { expectProblemShape, type Harness, makeUser, startHarness } from "./helpers.ts";

let h: Harness;
let admin: string;
beforeAll(async () => {
  h = await startHarness();
  admin = await h.token("ops-admin", "admin");
});
afterAll(async () => {
  await h?.close();
});

const open = (token: string, body: unknown) => h.call("POST", "/api/v1/wallets", { token, body });
const act = (token: string, id: string, action: string) =>
  h.call("POST", `/api/v1/wallets/${id}/${action}`, { token });

describe("opening wallets", () => {
  test("a VERIFIED user opens one per currency; shape and event", async () => {
    const u = await makeUser(h, admin, { verified: true });
    const r = await open(u.token, { currency: "JPY" });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      user_id: u.id,
      currency: "JPY",
      kind: "fiat",
      status: "ACTIVE",
      available_balance: "0",
      pending_balance: "0",
      total_balance: "0",
      daily_limit: null,
      monthly_limit: null,
      version: 0,
    });
    expect(Object.keys(r.body).sort()).toEqual(
      [
        "available_balance",
        "created_at",
        "currency",
        "daily_limit",
        "id",
        "kind",
        "monthly_limit",
        "pending_balance",
        "status",
        "total_balance",
        "updated_at",
        "user_id",
        "version",
      ].sort(),
    );
    const btc = await open(u.token, { currency: "BTC", user_id: u.id });
    expect(btc.status).toBe(201);
    expect(btc.body).toMatchObject({ kind: "crypto", total_balance: "0.00000000" });

    const dup = await open(u.token, { currency: "JPY" });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe("WALLET_ALREADY_EXISTS");
    expectProblemShape(dup);

    const [ev] = await h.sql`SELECT type, data FROM outbox WHERE aggregate_id = ${r.body.id}`;
    expect(ev?.type).toBe("wallet.created");
    expect(ev?.data.id).toBe(r.body.id);
  });

  test("unverified → 422 USER_NOT_VERIFIED; unsupported currency → 400 on currency", async () => {
    const u = await makeUser(h, admin);
    const r = await open(u.token, { currency: "USD" });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe("USER_NOT_VERIFIED");
    const bad = await open(u.token, { currency: "DOGE" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe("currency");
  });

  test("user_id: another user's → 403; admin must give one; admin for unknown user → 404", async () => {
    const a = await makeUser(h, admin, { verified: true });
    const b = await makeUser(h, admin, { verified: true });
    expect((await open(a.token, { currency: "USD", user_id: b.id })).status).toBe(403);
    const noUser = await open(admin, { currency: "USD" });
    expect(noUser.status).toBe(400);
    expect(noUser.body.errors[0].field).toBe("user_id");
    const unknown = await open(admin, { currency: "USD", user_id: crypto.randomUUID() });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("USER_NOT_FOUND");
    const ok = await open(admin, { currency: "USD", user_id: b.id });
    expect(ok.status).toBe(201);
    expect(ok.body.user_id).toBe(b.id);
  });

  test("concurrent opens of one currency: one 201, the rest 409", async () => {
    const u = await makeUser(h, admin, { verified: true });
    const rs = await Promise.all([1, 2, 3].map(() => open(u.token, { currency: "EUR" })));
    expect(rs.map((r) => r.status).sort()).toEqual([201, 409, 409]);
  });
});

describe("status machine", () => {
  test("the transition table is SPEC §2.3", () => {
    expect(WALLET_TRANSITIONS).toEqual({
      suspend: { from: ["ACTIVE"], to: "SUSPENDED" },
      activate: { from: ["SUSPENDED", "LOCKED"], to: "ACTIVE" },
      lock: { from: ["ACTIVE", "SUSPENDED"], to: "LOCKED" },
      close: { from: ["ACTIVE", "SUSPENDED", "LOCKED"], to: "CLOSED" },
    });
  });

  test("every action from every status matches the table (admin)", async () => {
    const u = await makeUser(h, admin, { verified: true });
    const statuses = ["ACTIVE", "SUSPENDED", "LOCKED", "CLOSED"] as const;
    for (const from of statuses) {
      for (const action of ["suspend", "activate", "lock", "close"] as const) {
        // a fresh wallet forced into `from` (the test owns the database)
        const w = await open(admin, { currency: "GBP", user_id: u.id });
        expect(w.status).toBe(201);
        await h.sql`UPDATE wallets SET status = ${from}, closed_at = ${from === "CLOSED" ? new Date() : null} WHERE id = ${w.body.id}`;
        const r = await act(admin, w.body.id, action);
        const rule = WALLET_TRANSITIONS[action];
        if ((rule.from as readonly string[]).includes(from)) {
          expect(r.status).toBe(200);
          expect(r.body.status).toBe(rule.to);
          expect(r.body.version).toBe(1);
        } else {
          expect(r.status).toBe(409);
          expect(r.body).toMatchObject({ code: "WALLET_INVALID_TRANSITION", current_status: from });
        }
        await h.sql`UPDATE wallets SET status = 'CLOSED', closed_at = now() WHERE id = ${w.body.id}`;
      }
    }
    const [actor] =
      await h.sql`SELECT status_actor FROM wallets WHERE user_id = ${u.id} AND version = 1 LIMIT 1`;
    expect(actor?.status_actor).toEqual({ id: "ops-admin", role: "admin" });
  });

  test("close needs zero total balance (422); the owner may close its own ACTIVE wallet only", async () => {
    const u = await makeUser(h, admin, { verified: true });
    const w = (await open(u.token, { currency: "KWD" })).body;
    await h.sql`UPDATE wallets SET pending_balance = 1 WHERE id = ${w.id}`;
    const full = await act(admin, w.id, "close");
    expect(full.status).toBe(422);
    expect(full.body.code).toBe("WALLET_NOT_EMPTY");
    await h.sql`UPDATE wallets SET pending_balance = 0 WHERE id = ${w.id}`;

    expect((await act(u.token, w.id, "suspend")).status).toBe(403);
    expect((await act(admin, w.id, "suspend")).status).toBe(200);
    expect((await act(u.token, w.id, "close")).status).toBe(403);
    expect((await act(admin, w.id, "activate")).status).toBe(200);
    const closed = await act(u.token, w.id, "close");
    expect(closed.status).toBe(200);
    expect(closed.body.status).toBe("CLOSED");
    const again = await act(u.token, w.id, "close");
    expect(again.status).toBe(409);

    // a closed wallet does not count: a new one in the same currency may be opened
    expect((await open(u.token, { currency: "KWD" })).status).toBe(201);
    const events = await h.sql`SELECT type, data FROM outbox WHERE aggregate_id = ${w.id} ORDER BY sequence`;
    expect(events.map((e) => e.type)).toEqual([
      "wallet.created",
      "wallet.status_changed",
      "wallet.status_changed",
      "wallet.status_changed",
    ]);
    expect(events[3]?.data).toMatchObject({ status: "CLOSED", previous_status: "ACTIVE" });
  });
});

describe("limits", () => {
  test("set, keep, clear; monthly below daily → 400; exact rendering", async () => {
    const u = await makeUser(h, admin, { verified: true });
    const w = (await open(u.token, { currency: "USD" })).body;
    const patch = (body: unknown, token = admin) =>
      h.call("PATCH", `/api/v1/wallets/${w.id}/limits`, { token, body });
    let r = await patch({ daily_limit: "100.5", monthly_limit: "1000" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ daily_limit: "100.50", monthly_limit: "1000.00", version: 1 });
    r = await patch({ monthly_limit: "50" });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].field).toBe("monthly_limit");
    r = await patch({ daily_limit: null });
    expect(r.body).toMatchObject({ daily_limit: null, monthly_limit: "1000.00" });
    r = await patch({ daily_limit: "1.001" });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].field).toBe("daily_limit");
    r = await patch({});
    expect(r.status).toBe(400);
    expect((await patch({ daily_limit: "1" }, u.token)).status).toBe(403);
    const [row] = await h.sql`SELECT limits_actor FROM wallets WHERE id = ${w.id}`;
    expect(row?.limits_actor).toEqual({ id: "ops-admin", role: "admin" });
  });
});

describe("listing", () => {
  test("users see only their own; admins filter; /me; pages are stable", async () => {
    const a = await makeUser(h, admin, { verified: true });
    const b = await makeUser(h, admin, { verified: true });
    for (const c of ["USD", "EUR", "GBP", "JPY", "BTC"]) await open(a.token, { currency: c });
    await open(b.token, { currency: "USD" });

    const own = await h.call("GET", "/api/v1/wallets?limit=100", { token: a.token });
    expect(own.body.data.length).toBe(5);
    expect(own.body.data.every((w: { user_id: string }) => w.user_id === a.id)).toBe(true);
    expect((await h.call("GET", `/api/v1/wallets?user_id=${b.id}`, { token: a.token })).status).toBe(403);

    const me = await h.call("GET", "/api/v1/wallets/me?currency=BTC", { token: a.token });
    expect(me.body.data.map((w: { currency: string }) => w.currency)).toEqual(["BTC"]);

    const filtered = await h.call("GET", `/api/v1/wallets?user_id=${a.id}&currency=USD&status=ACTIVE`, {
      token: admin,
    });
    expect(filtered.body.data.length).toBe(1);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? "" : `&cursor=${cursor}`;
      const p = await h.call("GET", `/api/v1/wallets/me?limit=2${q}`, { token: a.token });
      seen.push(...p.body.data.map((w: { id: string }) => w.id));
      cursor = p.body.next_cursor;
    } while (cursor !== null);
    expect(seen).toEqual(own.body.data.map((w: { id: string }) => w.id));

    const other = await h.call("GET", `/api/v1/wallets/${own.body.data[0].id}`, { token: b.token });
    expect(other.status).toBe(404);
    expect(other.body.code).toBe("WALLET_NOT_FOUND");
    const adminMe = await h.call("GET", "/api/v1/wallets/me", { token: admin });
    expect(adminMe.body).toEqual({ data: [], has_more: false, next_cursor: null });
  });
});

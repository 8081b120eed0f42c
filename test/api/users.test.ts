// Users and KYC (SPEC §2.2, §3.2) through the real app and database.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { KYC_TRANSITIONS } from "../../src/modules/users/model.ts";
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

describe("registration", () => {
  test("201 with a normalised email; user.created without personal data", async () => {
    const r = await h.call("POST", "/api/v1/users", {
      body: { email: "  Alice@Example.COM ", full_name: "  Alice A " },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      email: "alice@example.com",
      full_name: "Alice A",
      kyc_status: "UNVERIFIED",
    });
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    const [ev] =
      await h.sql`SELECT type, data, actor, sequence FROM outbox WHERE aggregate_id = ${r.body.id}`;
    expect(ev?.type).toBe("user.created");
    expect(ev?.sequence).toBe(1);
    expect(Object.keys(ev?.data).sort()).toEqual(["created_at", "id", "kyc_status", "updated_at"]);
    expect(JSON.stringify(ev?.data)).not.toContain("alice");
  });

  test("duplicate email (any case) → 409 EMAIL_ALREADY_EXISTS, no extra event", async () => {
    await h.call("POST", "/api/v1/users", { body: { email: "dup@example.com", full_name: "D" } });
    const before = await h.sql`SELECT count(*)::int AS n FROM outbox`;
    const r = await h.call("POST", "/api/v1/users", { body: { email: "DUP@example.com", full_name: "D2" } });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe("EMAIL_ALREADY_EXISTS");
    expectProblemShape(r);
    const after = await h.sql`SELECT count(*)::int AS n FROM outbox`;
    expect(after[0]?.n).toBe(before[0]?.n);
  });
});

describe("KYC state machine", () => {
  test("the transition table is SPEC §2.2", () => {
    expect(KYC_TRANSITIONS).toEqual({
      start: { from: ["UNVERIFIED", "REJECTED"], to: "PENDING" },
      approve: { from: ["PENDING"], to: "VERIFIED" },
      reject: { from: ["PENDING"], to: "REJECTED" },
    });
  });

  test("start → reject(reason) → start → approve; VERIFIED is final", async () => {
    const u = await makeUser(h, admin);
    const kyc = (body: unknown) => h.call("POST", `/api/v1/users/${u.id}/kyc`, { token: admin, body });
    const start = () => h.call("POST", `/api/v1/users/${u.id}/kyc/start`, { token: u.token });

    let r = await kyc({ approved: true });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: "KYC_INVALID_TRANSITION", current_status: "UNVERIFIED" });

    expect((await start()).body.kyc_status).toBe("PENDING");
    r = await start();
    expect(r.status).toBe(409);
    expect(r.body.current_status).toBe("PENDING");

    r = await kyc({ approved: false });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].field).toBe("reason");
    r = await kyc({ approved: false, reason: "   " });
    expect(r.status).toBe(400);

    r = await kyc({ approved: false, reason: "blurry passport" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ kyc_status: "REJECTED", kyc_reason: "blurry passport" });

    expect((await start()).body).toMatchObject({ kyc_status: "PENDING", kyc_reason: null });
    r = await kyc({ approved: true });
    expect(r.body.kyc_status).toBe("VERIFIED");

    for (const attempt of [
      start,
      () => kyc({ approved: false, reason: "x" }),
      () => kyc({ approved: true }),
    ]) {
      const again = await attempt();
      expect(again.status).toBe(409);
      expect(again.body.current_status).toBe("VERIFIED");
    }

    const events =
      await h.sql`SELECT type, sequence, actor FROM outbox WHERE aggregate_id = ${u.id} ORDER BY sequence`;
    expect(events.map((e) => e.type)).toEqual([
      "user.created",
      "user.kyc.started",
      "user.kyc.rejected",
      "user.kyc.started",
      "user.kyc.approved",
    ]);
    expect(events.map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5]);
    expect(events[4]?.actor).toEqual({ id: "ops-admin", role: "admin" });
    const [row] = await h.sql`SELECT kyc_actor FROM users WHERE id = ${u.id}`;
    expect(row?.kyc_actor).toEqual({ id: "ops-admin", role: "admin" });
  });

  test("concurrent decisions: exactly one wins", async () => {
    const u = await makeUser(h, admin);
    await h.call("POST", `/api/v1/users/${u.id}/kyc/start`, { token: u.token });
    const results = await Promise.all([
      h.call("POST", `/api/v1/users/${u.id}/kyc`, { token: admin, body: { approved: true } }),
      h.call("POST", `/api/v1/users/${u.id}/kyc`, { token: admin, body: { approved: false, reason: "no" } }),
      h.call("POST", `/api/v1/users/${u.id}/kyc`, { token: admin, body: { approved: true } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
  });
});

describe("reading and listing users", () => {
  test("get: owner and admin 200, another user 404, unknown 404", async () => {
    const a = await makeUser(h, admin);
    const b = await makeUser(h, admin);
    expect((await h.call("GET", `/api/v1/users/${a.id}`, { token: a.token })).status).toBe(200);
    expect((await h.call("GET", `/api/v1/users/${a.id}`, { token: admin })).status).toBe(200);
    const other = await h.call("GET", `/api/v1/users/${a.id}`, { token: b.token });
    expect(other.status).toBe(404);
    expect(other.body.code).toBe("USER_NOT_FOUND");
    const missing = await h.call("GET", `/api/v1/users/${crypto.randomUUID()}`, { token: admin });
    expect(missing.body.code).toBe("USER_NOT_FOUND");
  });

  test("admin list: filters and stable cursor pages", async () => {
    const tag = crypto.randomUUID().slice(0, 6);
    for (let i = 0; i < 5; i++) await makeUser(h, admin, { email: `list-${tag}-${i}@example.com` });
    const one = await h.call("GET", `/api/v1/users?email=LIST-${tag}-3@example.com`, { token: admin });
    expect(one.body.data.map((u: { email: string }) => u.email)).toEqual([`list-${tag}-3@example.com`]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? "" : `&cursor=${cursor}`;
      const p = await h.call("GET", `/api/v1/users?kyc_status=UNVERIFIED&limit=2${q}`, { token: admin });
      expect(p.status).toBe(200);
      expect(p.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...p.body.data.map((u: { id: string }) => u.id));
      cursor = p.body.next_cursor;
      // a new registration between pages must not shift them
      await makeUser(h, admin);
    } while (cursor !== null);
    expect(new Set(seen).size).toBe(seen.length);
    const created = await h.sql`SELECT count(*)::int AS n FROM users WHERE kyc_status = 'UNVERIFIED'`;
    expect(seen.length).toBeLessThan(created[0]?.n);

    for (const bad of ["limit=0", "limit=101", "limit=abc", "cursor=garbage!", "kyc_status=DONE", "sort=x"]) {
      const r = await h.call("GET", `/api/v1/users?${bad}`, { token: admin });
      expect(r.status).toBe(400);
      expect(r.body.errors[0].field).toBe(bad.split("=")[0]);
    }
  });
});

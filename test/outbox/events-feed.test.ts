// GET /api/v1/events and POST /api/v1/admin/events/requeue through the real HTTP core and
// authenticator. The feed must never skip a late-committing event.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { loadConfig } from "../../src/config.ts";
import type { Sql } from "../../src/db/client.ts";
import { createAuthenticator, mintToken } from "../../src/http/auth.ts";
import { corePlugin, methodIndex } from "../../src/http/core.ts";
import { eventsRoutes } from "../../src/modules/events/index.ts";
import type { Envelope } from "../../src/outbox/envelope.ts";
import { appendEvents } from "../../src/outbox/events.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { connectSql, insertUsers, silentLogger, waitFor, writeRounds } from "./helpers.ts";

const config = loadConfig({ JWT_SECRET: "f".repeat(40), PAYBRIDGE_ENV: "test" }, "serve");
let db: TestDatabase;
let sql: Sql;
let app: { handle(r: Request): Promise<Response> };
let admin: string;
let user: string;

beforeAll(async () => {
  db = await createTestDatabase("pbfeed");
  sql = connectSql(db.url, 8);
  const { auth } = await createAuthenticator(config);
  const a: Elysia = new Elysia({ normalize: false })
    .use(corePlugin({ logger: silentLogger, allowedMethods: methodIndex(() => a.routes) }))
    .use(eventsRoutes({ sql, auth })) as unknown as Elysia;
  app = a;
  admin = await mintToken(config, { sub: "ops", role: "admin", ttlSeconds: 600 });
  user = await mintToken(config, { sub: crypto.randomUUID(), role: "user", ttlSeconds: 600 });
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

async function call(method: string, path: string, token: string | null = admin, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type Feed = { data: Envelope[]; has_more: boolean };
const feed = async (query: string) => (await call("GET", `/api/v1/events${query}`)).body as unknown as Feed;

/** Follows the feed from `after` to its current end. */
async function follow(after?: string): Promise<Envelope[]> {
  const out: Envelope[] = [];
  let cursor = after;
  for (;;) {
    const page = await feed(`?limit=7${cursor ? `&after=${cursor}` : ""}`);
    out.push(...page.data);
    cursor = page.data.at(-1)?.id ?? cursor;
    if (!page.has_more) return out;
  }
}

const event = (aggregateId: string, round: number) => ({
  type: "user.kyc.started" as const,
  aggregateType: "user" as const,
  aggregateId,
  actor: { id: "t", role: "admin" as const },
  traceId: `trace-${round}`,
  data: { round },
});

describe("GET /api/v1/events", () => {
  test("admin only: 401 without a token, 403 for a user", async () => {
    expect((await call("GET", "/api/v1/events", null)).status).toBe(401);
    expect((await call("GET", "/api/v1/events", user)).status).toBe(403);
    expect((await call("POST", "/api/v1/admin/events/requeue", user, {})).status).toBe(403);
  });

  test("pages oldest first with has_more, every event once, default limit 100", async () => {
    await sql`DELETE FROM outbox`;
    const users = await insertUsers(sql, 25);
    await writeRounds(sql, users, 10);
    const first = await feed("");
    expect(first.data.length).toBe(100);
    expect(first.has_more).toBe(true);
    expect(first.data[0]).toMatchObject({
      version: 1,
      aggregate_type: "user",
      sequence: 1,
      trace_id: "trace-1",
    });
    const all = await follow();
    expect(all.length).toBe(250);
    expect(new Set(all.map((e) => e.id)).size).toBe(250);
    const full = await feed("?limit=1000");
    expect(full).toMatchObject({ has_more: false });
    expect(full.data.map((e) => e.id)).toEqual(all.map((e) => e.id));
  });

  test.each([
    ["?limit=0", "limit"],
    ["?limit=1001", "limit"],
    ["?limit=abc", "limit"],
    ["?after=not-a-uuid", "after"],
    [`?after=${"0".repeat(8)}-0000-4000-8000-${"0".repeat(12)}`, "after"],
  ])("%s is a 400 naming the field", async (query, field) => {
    const res = await call("GET", `/api/v1/events${query}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("VALIDATION_ERROR");
    expect((res.body.errors as { field: string }[]).map((e) => e.field)).toContain(field);
  });

  test("a late commit is never skipped, even when its transaction started first", async () => {
    await sql`DELETE FROM outbox`;
    const [u1, u2, u3] = (await insertUsers(sql, 3)) as [string, string, string];
    await sql.begin((tx) => appendEvents(tx, [event(u3, 0)]));
    const [start] = (await feed("")).data;
    expect(start).toBeDefined();

    // T_early takes its transaction id first (a write), T_late inserts its event first
    // (lower position) and stays open; T_early then writes its event and commits.
    const early = await sql.reserve();
    const late = await sql.reserve();
    try {
      await early`BEGIN`;
      await early`UPDATE users SET updated_at = now() WHERE id = ${u1}`;
      await late`BEGIN`;
      await appendEvents(late as unknown as Sql, [event(u2, 1)]);
      await appendEvents(early as unknown as Sql, [event(u1, 2)]);
      await early`COMMIT`;

      // The committed event is not served while an older transaction is still open...
      const whileOpen = await follow(start?.id);
      expect(whileOpen.map((e) => e.data.round)).not.toContain(1);
      // ...and a consumer that advanced its cursor anyway still gets the late one after commit.
      const cursor = whileOpen.at(-1)?.id ?? start?.id;
      await late`COMMIT`;
      const seen = [...whileOpen];
      await waitFor("both events served", async () => {
        seen.push(...(await follow(seen.at(-1)?.id ?? cursor)));
        return seen.some((e) => e.data.round === 1) && seen.some((e) => e.data.round === 2);
      });
      expect(seen.filter((e) => e.data.round === 1).length).toBe(1);
      expect(seen.filter((e) => e.data.round === 2).length).toBe(1);
    } finally {
      await early`ROLLBACK`.catch(() => {});
      await late`ROLLBACK`.catch(() => {});
      early.release();
      late.release();
    }
  });

  test("a follower polling during concurrent writers sees every event exactly once", async () => {
    await sql`DELETE FROM outbox`;
    const users = await insertUsers(sql, 8);
    const seen: Envelope[] = [];
    let writing = true;
    const follower = (async () => {
      while (writing) {
        seen.push(...(await follow(seen.at(-1)?.id)));
        await Bun.sleep(5);
      }
    })();
    // Writers hold their transactions open for a random moment after inserting, so commits
    // land out of position order.
    await Promise.all(
      users.map(async (id, w) => {
        for (let i = 0; i < 15; i++) {
          await sql.begin(async (tx) => {
            await appendEvents(tx, [event(id, w * 100 + i)]);
            await Bun.sleep(Math.floor(Math.random() * 8));
          });
        }
      }),
    );
    writing = false;
    await follower;
    await waitFor("follower caught up", async () => {
      seen.push(...(await follow(seen.at(-1)?.id)));
      return seen.length >= 120;
    });
    expect(seen.length).toBe(120);
    expect(new Set(seen.map((e) => e.id)).size).toBe(120);
  }, 30_000);
});

describe("POST /api/v1/admin/events/requeue", () => {
  test("puts FAILED events back to pending (chosen ids, or all)", async () => {
    await sql`DELETE FROM outbox`;
    const users = await insertUsers(sql, 3);
    await writeRounds(sql, users, 1);
    await sql`UPDATE outbox SET status = 'FAILED', attempts = 10, last_error = 'x'`;
    const [one] = await sql<{ id: string }[]>`SELECT id FROM outbox LIMIT 1`;
    const r1 = await call("POST", "/api/v1/admin/events/requeue", admin, { ids: [one?.id] });
    expect(r1).toEqual({ status: 200, body: { requeued: 1, ids: [one?.id as string] } });
    const [row] = await sql`SELECT status, attempts FROM outbox WHERE id = ${one?.id as string}`;
    expect(row).toMatchObject({ status: "PENDING", attempts: 0 });
    const r2 = await call("POST", "/api/v1/admin/events/requeue", admin, {});
    expect(r2.body.requeued).toBe(2);
    const r3 = await call("POST", "/api/v1/admin/events/requeue", admin, {});
    expect(r3.body).toEqual({ requeued: 0, ids: [] });
  });

  test.each([[{ ids: ["nope"] }], [{ ids: [] }], [{ all: true }]])("%p is a 400", async (body) => {
    const res = await call("POST", "/api/v1/admin/events/requeue", admin, body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("VALIDATION_ERROR");
  });
});

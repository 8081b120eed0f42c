// SQLSTATE → client error, as a table, against real errors raised by PostgreSQL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { isRetryable, mapDbError } from "../../src/db/errors.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

let db: TestDatabase;
let sql: postgres.Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

async function raised(q: () => Promise<unknown>): Promise<unknown> {
  try {
    await q();
  } catch (e) {
    return e;
  }
  throw new Error("query did not fail");
}

describe("mapDbError", () => {
  test("23505 on the email index → 409 EMAIL_ALREADY_EXISTS", async () => {
    await sql`INSERT INTO users (email, full_name) VALUES ('a@b.co', 'A')`;
    const e = mapDbError(
      await raised(() => sql`INSERT INTO users (email, full_name) VALUES ('a@b.co', 'B')`),
    );
    expect(e?.status).toBe(409);
    expect(e?.code).toBe("EMAIL_ALREADY_EXISTS");
  });

  test("23514 check → 400 naming the field; 23503 fk → 400; 22P02 → 400", async () => {
    const check = mapDbError(
      await raised(() => sql`INSERT INTO users (email, full_name) VALUES ('UP@b.co', 'A')`),
    );
    expect(check?.status).toBe(400);
    expect(check?.fields?.[0]?.field).toBe("email");
    const fk = mapDbError(
      await raised(
        () => sql`INSERT INTO wallets (user_id, currency, kind) VALUES (gen_random_uuid(), 'USD', 'fiat')`,
      ),
    );
    expect(fk?.status).toBe(400);
    const cast = mapDbError(await raised(() => sql`SELECT ${"nope"}::uuid`));
    expect(cast?.status).toBe(400);
  });

  test("57014 statement timeout → 503; connection refused → 503; none leaks driver text", async () => {
    const timeout = await raised(() =>
      sql.begin(async (tx) => {
        await tx`SET LOCAL statement_timeout = 10`;
        await tx`SELECT pg_sleep(1)`;
      }),
    );
    const t = mapDbError(timeout);
    expect(t?.status).toBe(503);
    expect(t?.code).toBe("SERVICE_UNAVAILABLE");
    expect(t?.detail).not.toContain("statement");
    const down = postgres("postgres://postgres@127.0.0.1:1/x", { max: 1, connect_timeout: 2 });
    const c = mapDbError(await raised(() => down`SELECT 1`));
    expect(c?.status).toBe(503);
    await down.end();
  });

  test("40001/40P01 are retryable; other errors are not database errors", () => {
    expect(isRetryable({ code: "40001" })).toBe(true);
    expect(isRetryable({ code: "40P01" })).toBe(true);
    expect(isRetryable({ code: "23505" })).toBe(false);
    expect(mapDbError({ code: "40P01" })?.status).toBe(503);
    expect(mapDbError(new Error("boom"))).toBeUndefined();
  });
});

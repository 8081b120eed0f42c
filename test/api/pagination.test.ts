// Cursor encoding and keyset paging against a real table: pages are stable while rows are
// inserted between page requests, even for rows created within the same millisecond.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { AppError } from "../../src/http/errors.ts";
import { decodeCursor, encodeCursor, keysetBefore, toPage } from "../../src/http/pagination.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

const ID = "7f1c1d52-6f1e-4c5a-9e59-0b4b7c9d1a23";

describe("cursor codec", () => {
  test("round trip, Date and exact text", () => {
    const d = new Date("2024-05-01T10:00:00.123Z");
    expect(decodeCursor(encodeCursor({ createdAt: d, id: ID }))).toEqual({
      createdAt: d.toISOString(),
      id: ID,
    });
    const exact = "2024-05-01 10:00:00.123456+00";
    expect(decodeCursor(encodeCursor({ createdAt: exact, id: ID }))).toEqual({ createdAt: exact, id: ID });
  });

  test.each([
    "",
    "!!!",
    "abc",
    Buffer.from("[1,2]").toString("base64url"),
    Buffer.from('["2024-01-01T00:00:00Z","nope"]').toString("base64url"),
    Buffer.from(`["yesterday","${ID}"]`).toString("base64url"),
    Buffer.from(`["2024-01-01T00:00:00Z'; DROP TABLE users;--","${ID}"]`).toString("base64url"),
    "a".repeat(300),
  ])("garbage %p → 400 on cursor", (s) => {
    try {
      decodeCursor(s);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(AppError);
      expect((e as AppError).fields?.[0]?.field).toBe("cursor");
    }
  });
});

describe("keyset paging", () => {
  let db: TestDatabase;
  let sql: postgres.Sql;
  beforeAll(async () => {
    db = await createTestDatabase();
    sql = postgres(db.url, { max: 2, onnotice: () => {} });
    // 25 rows, many sharing one millisecond but not one microsecond
    await sql`CREATE TABLE items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), created_at timestamptz NOT NULL)`;
    await sql`INSERT INTO items (created_at)
              SELECT timestamptz '2024-01-01 00:00:00.000100+00' + (g % 5) * interval '1 microsecond'
              FROM generate_series(1, 25) g`;
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  async function page(cursor: string | null, limit: number) {
    const c = cursor === null ? undefined : decodeCursor(cursor);
    const rows = await sql<{ id: string; created_at: Date; cursor_ts: string }[]>`
      SELECT id, created_at, created_at::text AS cursor_ts FROM items
      ${c ? sql`WHERE ${keysetBefore(sql as never, c)}` : sql``}
      ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`;
    return toPage(rows, limit, (r) => r.id);
  }

  test("no duplicates or gaps across pages under concurrent inserts", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const p = await page(cursor, 4);
      seen.push(...p.data);
      cursor = p.next_cursor;
      expect(p.has_more).toBe(cursor !== null);
      pages++;
      // newer rows arriving between pages must not disturb the walk
      await sql`INSERT INTO items (created_at) VALUES (now())`;
    } while (cursor !== null);
    expect(pages).toBe(7);
    const original =
      await sql`SELECT id FROM items WHERE created_at < '2024-01-02' ORDER BY created_at DESC, id DESC`;
    expect(seen).toEqual(original.map((r) => r.id as string));
  });

  test("last page has next_cursor null", async () => {
    const p = await page(null, 100);
    expect(p.has_more).toBe(false);
    expect(p.next_cursor).toBeNull();
  });
});

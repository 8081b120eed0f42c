// A fresh PostgreSQL database per test file: created from the admin URL, migrated through
// the real migrator (so its bookkeeping exists and /ready sees the expected version),
// dropped at the end. Tests never share state with each other or with a developer.
import postgres from "postgres";
import type { Sql } from "../../src/db/client.ts";
import { migrateUp } from "../../src/db/migrator.ts";

export const ADMIN_DATABASE_URL =
  process.env.TEST_ADMIN_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export function databaseUrlFor(name: string): string {
  const u = new URL(ADMIN_DATABASE_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export type TestDatabase = { name: string; url: string; drop: () => Promise<void> };

/** Creates an empty database (no schema). */
export async function createEmptyDatabase(prefix = "pbtest"): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  await admin.end();
  return {
    name,
    url: databaseUrlFor(name),
    drop: async () => {
      const a = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** Creates a database with every registered migration applied by the migrator. */
export async function createTestDatabase(prefix = "pbtest"): Promise<TestDatabase> {
  const db = await createEmptyDatabase(prefix);
  const sql = postgres(db.url, { max: 1, onnotice: () => {} }) as unknown as Sql;
  try {
    await migrateUp(sql);
  } finally {
    await sql.end();
  }
  return db;
}

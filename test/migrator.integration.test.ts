// The migrator against real PostgreSQL: every test gets a fresh, empty database.
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import postgres from "postgres";
import type { Sql } from "../src/db/client.ts";
import {
  MIGRATION_LOCK_KEY,
  MigrationDirtyError,
  MigrationDriftError,
  MigrationFailedError,
  MigrationLockTimeoutError,
  MigrationRequestError,
  migrateDown,
  migrateDrop,
  migrateForce,
  migrateGoto,
  migrateUp,
  migrationChecksum,
  readApplied,
  schemaState,
} from "../src/db/migrator.ts";
import { EXPECTED_SCHEMA_VERSION, MIGRATIONS, type RegisteredMigration } from "../src/db/registry.ts";
import { createEmptyDatabase, type TestDatabase } from "./helpers/db.ts";

// Each test creates and drops a database and may wait on the lock: more than bun's 5 s default
// on a loaded 2-core machine, far less than this bound.
setDefaultTimeout(30_000);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
}, 30_000);

async function freshDb(): Promise<{ db: TestDatabase; sql: Sql }> {
  const db = await createEmptyDatabase("pbmig");
  const sql = postgres(db.url, { max: 2, onnotice: () => {} }) as unknown as Sql;
  cleanups.push(async () => {
    await sql.end({ timeout: 1 });
    await db.drop();
  });
  return { db, sql };
}

function fake(
  version: number,
  name: string,
  up: string,
  down: string,
  transactional = true,
): RegisteredMigration {
  return {
    name: `${String(version).padStart(5, "0")}_${name}.ts`,
    version,
    module: {
      source: { up, down },
      up: (sql) => sql.unsafe(up),
      down: (sql) => sql.unsafe(down),
      ...(transactional ? {} : { transactional: false }),
    },
  };
}

async function tables(sql: Sql): Promise<string[]> {
  const rows = await sql<{ t: string }[]>`
    SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`;
  return rows.map((r) => r.t);
}

const first = (n: number) => MIGRATIONS.slice(0, n);
const names = (n: number) => first(n).map((m) => m.name);

describe("migrator on an empty database", () => {
  test("up applies every migration once, with bookkeeping and checksums; a second up is no change", async () => {
    const { sql } = await freshDb();
    expect(await schemaState(sql)).toEqual({ version: null, dirty: false, drift: [] });
    const applied = await migrateUp(sql);
    expect(applied).toEqual(MIGRATIONS.map((m) => m.name));
    const rows = (await readApplied(sql))!;
    expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name));
    expect(rows.map((r) => r.checksum)).toEqual(MIGRATIONS.map((m) => migrationChecksum(m.module)));
    expect(rows.every((r) => !r.dirty && !r.forced)).toBe(true);
    expect(await schemaState(sql)).toEqual({ version: EXPECTED_SCHEMA_VERSION, dirty: false, drift: [] });
    expect(await tables(sql)).toEqual(
      expect.arrayContaining(["users", "wallets", "transactions", "ledger_entries", "outbox"]),
    );
    expect(await migrateUp(sql)).toEqual([]);
  });

  test("up N, down N, down --all", async () => {
    const { sql } = await freshDb();
    expect(await migrateUp(sql, { limit: 2 })).toEqual(names(2));
    expect((await schemaState(sql)).version).toBe(2);
    expect(await migrateUp(sql, { limit: 1 })).toEqual([MIGRATIONS[2]!.name]);
    expect(await migrateDown(sql, { limit: 1 })).toEqual([MIGRATIONS[2]!.name]);
    expect(await tables(sql)).not.toContain("transactions");
    expect((await schemaState(sql)).version).toBe(2);
    await migrateUp(sql);
    expect(await migrateDown(sql, { limit: "all" })).toEqual([...MIGRATIONS].reverse().map((m) => m.name));
    expect(await tables(sql)).toEqual(["paybridge_schema_migrations"]);
    expect(await schemaState(sql)).toEqual({ version: null, dirty: false, drift: [] });
    expect(await migrateDown(sql, { limit: 1 })).toEqual([]);
  });

  test("goto moves up and down to exactly V; an unknown V is refused", async () => {
    const { sql } = await freshDb();
    expect(await migrateGoto(sql, 3)).toEqual({ applied: names(3), reverted: [] });
    expect(await migrateGoto(sql, 1)).toEqual({
      applied: [],
      reverted: [MIGRATIONS[2]!.name, MIGRATIONS[1]!.name],
    });
    expect((await schemaState(sql)).version).toBe(1);
    expect(await migrateGoto(sql, 1)).toEqual({ applied: [], reverted: [] });
    await migrateGoto(sql, 0);
    expect((await schemaState(sql)).version).toBeNull();
    await expect(migrateGoto(sql, 99_999)).rejects.toBeInstanceOf(MigrationRequestError);
  });

  test("a failing file rolls back with its bookkeeping row; earlier files of the run stay", async () => {
    const { sql } = await freshDb();
    const broken = fake(
      MIGRATIONS.length + 1,
      "broken",
      "CREATE TABLE h1_partial (id int); INSERT INTO h1_partial VALUES (1); SELECT 1/0;",
      "DROP TABLE h1_partial;",
    );
    const registry = [...MIGRATIONS, broken];
    const err = await migrateUp(sql, { registry }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationFailedError);
    expect((err as Error).message).toContain(broken.name);
    expect((err as Error).message).toContain("division by zero");
    expect(await tables(sql)).not.toContain("h1_partial");
    expect(await schemaState(sql, registry)).toEqual({
      version: EXPECTED_SCHEMA_VERSION,
      dirty: false,
      drift: [],
    });
    // Nothing half-done: the same run again fails the same way and changes nothing.
    await expect(migrateUp(sql, { registry })).rejects.toBeInstanceOf(MigrationFailedError);
    expect((await readApplied(sql))!.length).toBe(MIGRATIONS.length);
  });

  test("a failing non-transactional file leaves dirty; up refuses until force clears it", async () => {
    const { sql } = await freshDb();
    const nonTx = fake(
      1,
      "concurrent_index",
      "CREATE TABLE h1_t (id int); SELECT 1/0;",
      "DROP TABLE h1_t;",
      false,
    );
    const err = await migrateUp(sql, { registry: [nonTx] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationFailedError);
    expect((err as MigrationFailedError).leftDirty).toBe(true);
    expect(await schemaState(sql, [nonTx])).toEqual({ version: 1, dirty: true, drift: [] });
    await expect(migrateUp(sql, { registry: [nonTx] })).rejects.toBeInstanceOf(MigrationDirtyError);
    await expect(migrateDown(sql, { registry: [nonTx], limit: 1 })).rejects.toBeInstanceOf(
      MigrationDirtyError,
    );
    await migrateForce(sql, 0, { registry: [nonTx] });
    expect(await schemaState(sql, [nonTx])).toEqual({ version: null, dirty: false, drift: [] });
  });

  test("a non-transactional file (CREATE INDEX CONCURRENTLY) applies and reverts", async () => {
    const { sql } = await freshDb();
    const table = fake(1, "table", "CREATE TABLE h1_t (id int);", "DROP TABLE h1_t;");
    const index = fake(
      2,
      "index",
      "CREATE INDEX CONCURRENTLY h1_t_idx ON h1_t (id)",
      "DROP INDEX CONCURRENTLY h1_t_idx",
      false,
    );
    expect(await migrateUp(sql, { registry: [table, index] })).toEqual([table.name, index.name]);
    expect(await schemaState(sql, [table, index])).toEqual({ version: 2, dirty: false, drift: [] });
    expect(await migrateDown(sql, { registry: [table, index], limit: 1 })).toEqual([index.name]);
    expect(await schemaState(sql, [table, index])).toEqual({ version: 1, dirty: false, drift: [] });
  });

  test("force records V without running SQL", async () => {
    const { sql } = await freshDb();
    await migrateUp(sql, { limit: 3 });
    await migrateForce(sql, 1);
    expect((await schemaState(sql)).version).toBe(1);
    expect(await tables(sql)).toContain("transactions"); // no down SQL ran
    await sql`DROP TABLE ledger_entries, transactions, wallets`;
    await migrateForce(sql, 3);
    const rows = (await readApplied(sql))!;
    expect(rows.map((r) => [r.version, r.forced])).toEqual([
      [1, false],
      [2, true],
      [3, true],
    ]);
    expect(await tables(sql)).not.toContain("wallets"); // no up SQL ran either
    await expect(migrateForce(sql, 99_999)).rejects.toBeInstanceOf(MigrationRequestError);
  });

  test("drift: a changed applied file makes up refuse, naming it", async () => {
    const { sql } = await freshDb();
    await migrateUp(sql, { limit: 2 });
    const changed = MIGRATIONS.map((m, i) =>
      i === 1
        ? {
            ...m,
            module: { ...m.module, source: { ...m.module.source, up: `${m.module.source.up}\n-- edited` } },
          }
        : m,
    );
    expect((await schemaState(sql, changed)).drift).toEqual([MIGRATIONS[1]!.name]);
    const err = await migrateUp(sql, { registry: changed }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationDriftError);
    expect((err as Error).message).toContain(MIGRATIONS[1]!.name);
    expect((await schemaState(sql)).version).toBe(2);
    // force re-records this binary's checksums (the operator's explicit acceptance).
    await migrateForce(sql, 2, { registry: changed });
    expect((await schemaState(sql, changed)).drift).toEqual([]);
  });

  test("drop removes tables, functions, triggers and bookkeeping; up works again", async () => {
    const { sql } = await freshDb();
    await migrateUp(sql);
    await sql`CREATE TYPE h1_mood AS ENUM ('ok')`;
    await sql`CREATE VIEW h1_v AS SELECT id FROM users`;
    expect(await migrateDrop(sql)).toBeGreaterThan(5);
    expect(await tables(sql)).toEqual([]);
    const [left] = await sql<{ f: number; t: number; c: number }[]>`
      SELECT (SELECT count(*)::int FROM pg_proc WHERE pronamespace = current_schema()::regnamespace) AS f,
             (SELECT count(*)::int FROM pg_type WHERE typnamespace = current_schema()::regnamespace) AS t,
             (SELECT count(*)::int FROM pg_class WHERE relnamespace = current_schema()::regnamespace) AS c`;
    expect(left).toEqual({ f: 0, t: 0, c: 0 });
    expect(await schemaState(sql)).toEqual({ version: null, dirty: false, drift: [] });
    expect(await migrateUp(sql)).toEqual(MIGRATIONS.map((m) => m.name));
  });

  test("five concurrent migrateUp: the schema is created once, the others see no change", async () => {
    const { db } = await freshDb();
    const pools = Array.from(
      { length: 5 },
      () => postgres(db.url, { max: 1, onnotice: () => {} }) as unknown as Sql,
    );
    cleanups.push(async () => {
      await Promise.all(pools.map((p) => p.end({ timeout: 1 })));
    });
    const results = await Promise.all(pools.map((p) => migrateUp(p)));
    expect(results.flat().sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
    expect(results.filter((r) => r.length === 0).length).toBe(4);
    expect((await readApplied(pools[0]!))!.length).toBe(MIGRATIONS.length);
  });

  test("a migrator whose connection is killed mid-migration fails at once, and the next one applies it", async () => {
    const { db, sql } = await freshDb();
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    cleanups.push(() => admin.end({ timeout: 1 }));
    const slow = fake(1, "slow", "SELECT pg_sleep(30); CREATE TABLE slow_t (id int)", "DROP TABLE slow_t");
    const run = migrateUp(sql, { registry: [slow] });
    // Wait until the migration is running, then end its session as a failover would.
    for (let i = 0; i < 200; i++) {
      const [r] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity
                              WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(30)%'`;
      if ((r as { n: number }).n > 0) break;
      await Bun.sleep(25);
    }
    await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(30)%'`;
    // Before the fix this never settled: the unlock went to the dead connection and hung.
    const outcome = await Promise.race([
      run.then(
        () => "applied",
        (e) => (e instanceof MigrationFailedError ? "failed" : `other: ${e}`),
      ),
      Bun.sleep(15_000).then(() => "still running after 15 s"),
    ]);
    expect(outcome).toBe("failed");
    expect(await tables(sql)).toEqual(["paybridge_schema_migrations"]);
    // The lock died with the session: the next migrator takes it at once and applies the file.
    const quick = fake(1, "slow", "SELECT 1; CREATE TABLE slow_t (id int)", "DROP TABLE slow_t");
    expect(await migrateUp(sql, { registry: [quick], lockTimeoutSeconds: 5 })).toEqual([quick.name]);
    expect(await tables(sql)).toContain("slow_t");
  });

  test("a held lock makes a migrator wait, log, and give up after its bound", async () => {
    const { sql, db } = await freshDb();
    const holder = postgres(db.url, { max: 1 });
    cleanups.push(() => holder.end({ timeout: 1 }));
    const reserved = await holder.reserve();
    await reserved`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
    const lines: string[] = [];
    const err = await migrateUp(sql, { lockTimeoutSeconds: 1, log: (l) => lines.push(l) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MigrationLockTimeoutError);
    expect(lines[0]).toContain("waiting for the migration lock held by pid");
    expect(await schemaState(sql)).toEqual({ version: null, dirty: false, drift: [] });
    await reserved`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
    reserved.release();
    expect((await migrateUp(sql)).length).toBe(MIGRATIONS.length);
  });
});

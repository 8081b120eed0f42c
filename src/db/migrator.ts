// The migrator (SPEC §7): what `paybridge migrate`, /ready and the test helpers call.
// Every verb that changes something runs on ONE reserved connection holding the migration
// lock (migrate-lock.ts); ley and the driver (migrate-ley.ts) apply the files.
import type { Sql } from "./client.ts";
import {
  connectionLost,
  type Direction,
  ensureBookkeeping,
  migrationChecksum,
  runLey,
} from "./migrate-ley.ts";
import { acquireMigrationLock, type Conn, releaseMigrationLock } from "./migrate-lock.ts";
import { MIGRATIONS, type RegisteredMigration } from "./registry.ts";

export { MigrationFailedError, migrationChecksum } from "./migrate-ley.ts";
export { MIGRATION_LOCK_KEY, MigrationLockTimeoutError } from "./migrate-lock.ts";

/** Default bound on waiting for another migrator (config.migrateLockTimeoutSeconds overrides). */
export const DEFAULT_LOCK_TIMEOUT_SECONDS = 300;

export type MigrateOptions = {
  /** Test-only: a registry other than the one compiled in. */
  registry?: readonly RegisteredMigration[];
  lockTimeoutSeconds?: number;
  /** Progress lines ("waiting for the migration lock…"). */
  log?: (line: string) => void;
  /** Called after each file is applied or reverted. */
  onMigrated?: (name: string, direction: Direction, ms: number) => void;
};

export type AppliedRow = {
  version: number;
  name: string;
  checksum: string;
  appliedAt: Date;
  durationMs: number | null;
  dirty: boolean;
  forced: boolean;
};

export type SchemaState = { version: number | null; dirty: boolean; drift: string[] };

/** The database refuses `up` because applied files differ from this binary's copies. */
export class MigrationDriftError extends Error {
  constructor(readonly files: readonly string[]) {
    super(
      `drift: ${files.join(", ")} changed since ${files.length === 1 ? "it was" : "they were"} applied (stored sha256 differs from this binary's copy); refusing to migrate`,
    );
    this.name = "MigrationDriftError";
  }
}

/** A previous non-transactional migration failed half-way. */
export class MigrationDirtyError extends Error {
  constructor(readonly row: AppliedRow) {
    super(
      `the schema is dirty at version ${row.version} (${row.name}): repair it by hand, then run \`paybridge migrate force V\``,
    );
    this.name = "MigrationDirtyError";
  }
}

/** A request the migrator refuses (unknown version, …): exit 1 with this message. */
export class MigrationRequestError extends Error {
  override name = "MigrationRequestError";
}

/** Checks the registry is usable: versions positive, unique, strictly increasing; names match. */
export function validateRegistry(registry: readonly RegisteredMigration[]): string[] {
  const problems: string[] = [];
  let prev = 0;
  for (const m of registry) {
    const match = /^(\d{5})_[a-z0-9_]{1,60}\.ts$/.exec(m.name);
    if (match === null) problems.push(`${m.name}: name must look like 00001_some_name.ts`);
    else if (Number(match[1]) !== m.version)
      problems.push(`${m.name}: version ${m.version} != its numeric prefix`);
    if (m.version <= prev) problems.push(`${m.name}: version ${m.version} is not greater than ${prev}`);
    prev = m.version;
  }
  return problems;
}

/** Applied migrations, oldest first; null when the bookkeeping table does not exist. */
export async function readApplied(sql: Sql): Promise<AppliedRow[] | null> {
  const [exists] = await sql<
    { t: string | null }[]
  >`SELECT to_regclass('paybridge_schema_migrations')::text AS t`;
  if (exists?.t == null) return null;
  const rows = await sql<
    {
      version: number;
      name: string;
      checksum: string;
      applied_at: Date;
      duration_ms: number | null;
      dirty: boolean;
      forced: boolean;
    }[]
  >`SELECT version, name, checksum, applied_at, duration_ms, dirty, forced
    FROM paybridge_schema_migrations ORDER BY version`;
  return rows.map((r) => ({
    version: r.version,
    name: r.name,
    checksum: r.checksum,
    appliedAt: r.applied_at,
    durationMs: r.duration_ms,
    dirty: r.dirty,
    forced: r.forced,
  }));
}

/** Names of applied migrations whose stored checksum differs from the registry's copy. */
export function driftOf(registry: readonly RegisteredMigration[], applied: readonly AppliedRow[]): string[] {
  const byName = new Map(registry.map((m) => [m.name, m]));
  return applied
    .filter((r) => {
      const m = byName.get(r.name);
      return m !== undefined && migrationChecksum(m.module) !== r.checksum;
    })
    .map((r) => r.name);
}

export function stateOf(
  registry: readonly RegisteredMigration[],
  applied: readonly AppliedRow[] | null,
): SchemaState {
  if (applied === null || applied.length === 0) return { version: null, dirty: false, drift: [] };
  return {
    version: applied.at(-1)!.version,
    dirty: applied.some((r) => r.dirty),
    drift: driftOf(registry, applied),
  };
}

/** The schema's state for /ready and `migrate version`. Read-only; takes no lock. */
export async function schemaState(
  sql: Sql,
  registry: readonly RegisteredMigration[] = MIGRATIONS,
): Promise<SchemaState> {
  return stateOf(registry, await readApplied(sql));
}

/** `3`, `3 (dirty)` or `none`. */
export function formatVersion(state: Pick<SchemaState, "version" | "dirty">): string {
  if (state.version === null) return "none";
  return state.dirty ? `${state.version} (dirty)` : String(state.version);
}

async function withLock<T>(sql: Sql, opts: MigrateOptions, fn: (conn: Conn) => Promise<T>): Promise<T> {
  const conn = (await sql.reserve()) as unknown as Conn;
  // A reserved postgres.js connection that has gone away must not be used again, not even to
  // unlock or to hand it back: its next query throws inside postgres.js, out of reach of any
  // catch, and that query never settles (`migrate up` hung until killed when its backend was
  // terminated mid-migration). Its session, and with it the advisory lock, is gone anyway.
  let lost = false;
  try {
    await acquireMigrationLock(
      conn,
      opts.lockTimeoutSeconds ?? DEFAULT_LOCK_TIMEOUT_SECONDS,
      opts.log ?? (() => {}),
    );
    try {
      return await fn(conn);
    } catch (err) {
      lost = connectionLost(err);
      throw err;
    } finally {
      if (!lost) await releaseMigrationLock(conn).catch(() => {});
    }
  } catch (err) {
    lost ||= connectionLost(err);
    throw err;
  } finally {
    if (!lost) conn.release();
  }
}

function registryOf(opts: MigrateOptions): readonly RegisteredMigration[] {
  const registry = opts.registry ?? MIGRATIONS;
  const problems = validateRegistry(registry);
  if (problems.length > 0)
    throw new MigrationRequestError(`invalid migration registry: ${problems.join("; ")}`);
  return registry;
}

async function lockedState(conn: Conn): Promise<AppliedRow[]> {
  const applied = (await readApplied(conn as unknown as Sql)) ?? [];
  const dirty = applied.find((r) => r.dirty);
  if (dirty !== undefined) throw new MigrationDirtyError(dirty);
  return applied;
}

async function upLocked(
  conn: Conn,
  registry: readonly RegisteredMigration[],
  limit: number | undefined,
  opts: MigrateOptions,
) {
  const applied = await lockedState(conn);
  const drift = driftOf(registry, applied);
  if (drift.length > 0) throw new MigrationDriftError(drift);
  if (limit === 0) return [];
  return await runLey({ conn, registry, direction: "up", limit, onDone: opts.onMigrated ?? (() => {}) });
}

async function downLocked(
  conn: Conn,
  registry: readonly RegisteredMigration[],
  limit: number | undefined,
  opts: MigrateOptions,
) {
  await lockedState(conn);
  if (limit === 0) return [];
  return await runLey({ conn, registry, direction: "down", limit, onDone: opts.onMigrated ?? (() => {}) });
}

/** Applies every pending migration (or the next `limit`). Returns the applied names. */
export async function migrateUp(sql: Sql, opts: MigrateOptions & { limit?: number } = {}): Promise<string[]> {
  const registry = registryOf(opts);
  return await withLock(sql, opts, (conn) => upLocked(conn, registry, opts.limit, opts));
}

/** Rolls back the last `limit` applied migrations ("all": every one). Returns the reverted names. */
export async function migrateDown(
  sql: Sql,
  opts: MigrateOptions & { limit: number | "all" },
): Promise<string[]> {
  const registry = registryOf(opts);
  const limit = opts.limit === "all" ? undefined : opts.limit;
  return await withLock(sql, opts, (conn) => downLocked(conn, registry, limit, opts));
}

/** Migrates up or down to exactly `version` (0 = nothing applied). */
export async function migrateGoto(
  sql: Sql,
  version: number,
  opts: MigrateOptions = {},
): Promise<{ applied: string[]; reverted: string[] }> {
  const registry = registryOf(opts);
  if (version !== 0 && !registry.some((m) => m.version === version)) {
    throw new MigrationRequestError(
      `version ${version} is not a known migration (known: 0, ${versionList(registry)})`,
    );
  }
  return await withLock(sql, opts, async (conn) => {
    const applied = await lockedState(conn);
    const current = applied.at(-1)?.version ?? 0;
    if (version > current) {
      const count = registry.filter((m) => m.version > current && m.version <= version).length;
      return { applied: await upLocked(conn, registry, count, opts), reverted: [] };
    }
    const count = applied.filter((r) => r.version > version).length;
    return { applied: [], reverted: await downLocked(conn, registry, count, opts) };
  });
}

/**
 * Records `version` as the current version and clears dirty, running no migration SQL:
 * rows above it are deleted, registry rows up to it are (re)recorded with this binary's
 * checksums. The recovery step after a failed non-transactional migration was repaired by hand.
 */
export async function migrateForce(sql: Sql, version: number, opts: MigrateOptions = {}): Promise<void> {
  const registry = registryOf(opts);
  if (version !== 0 && !registry.some((m) => m.version === version)) {
    throw new MigrationRequestError(
      `version ${version} is not a known migration (known: 0, ${versionList(registry)})`,
    );
  }
  await withLock(sql, opts, async (conn) => {
    await ensureBookkeeping(conn as unknown as Sql);
    await conn`BEGIN`;
    try {
      await conn`DELETE FROM paybridge_schema_migrations WHERE version > ${version}`;
      for (const m of registry.filter((r) => r.version <= version)) {
        const checksum = migrationChecksum(m.module);
        await conn`
          INSERT INTO paybridge_schema_migrations (version, name, checksum, dirty, forced)
          VALUES (${m.version}, ${m.name}, ${checksum}, false, true)
          ON CONFLICT (version) DO UPDATE
            SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, dirty = false,
                forced = paybridge_schema_migrations.forced
                  OR paybridge_schema_migrations.checksum <> EXCLUDED.checksum
                  OR paybridge_schema_migrations.dirty`;
      }
      await conn`COMMIT`;
    } catch (err) {
      await conn`ROLLBACK`.catch(() => {});
      throw err;
    }
  });
}

/**
 * Drops everything PayBridge created in the current schema: views, tables (with the
 * bookkeeping table), sequences, functions and types, and the default privileges granted
 * to paybridge_runtime. Extension-owned objects are left alone. One transaction.
 */
export async function migrateDrop(sql: Sql, opts: MigrateOptions = {}): Promise<number> {
  return await withLock(sql, opts, async (conn) => {
    const [before] = await conn<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')`;
    await conn`BEGIN`;
    try {
      await conn`DO $drop$
        DECLARE
          s text := current_schema();
          obj text;
        BEGIN
          -- Statements are built first, then run: dropping a table CASCADE drops dependents.
          FOREACH obj IN ARRAY coalesce((SELECT array_agg(format('DROP %s IF EXISTS %s CASCADE',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                ELSE 'TABLE' END, c.oid::regclass::text)
              ORDER BY CASE WHEN c.relkind IN ('v', 'm') THEN 0 WHEN c.relkind = 'S' THEN 2 ELSE 1 END)
            FROM pg_class c
            WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')), '{}')
          LOOP
            EXECUTE obj;
          END LOOP;
          FOREACH obj IN ARRAY coalesce((SELECT array_agg(p.oid::regprocedure::text) FROM pg_proc p
            WHERE p.pronamespace = s::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')), '{}')
          LOOP
            EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', obj);
          END LOOP;
          FOREACH obj IN ARRAY coalesce((SELECT array_agg(t.oid::regtype::text) FROM pg_type t
            WHERE t.typnamespace = s::regnamespace
              AND (t.typtype IN ('e', 'd', 'r', 'm')
                -- standalone composite types (CREATE TYPE x AS (...)), not a table's row type
                OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')), '{}')
          LOOP
            EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', obj);
          END LOOP;
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paybridge_runtime') THEN
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM paybridge_runtime', s);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM paybridge_runtime', s);
          END IF;
        END
        $drop$`;
      await conn`COMMIT`;
    } catch (err) {
      await conn`ROLLBACK`.catch(() => {});
      throw err;
    }
    return before?.n ?? 0;
  });
}

function versionList(registry: readonly RegisteredMigration[]): string {
  return registry.map((m) => m.version).join(", ");
}

export type StatusRow = {
  version: number;
  name: string;
  state: "applied" | "pending" | "dirty" | "not in this binary";
  appliedAt: Date | null;
  checksum: "ok" | "DRIFT" | "-";
  forced: boolean;
};

/** One row per migration known to the registry or the database, by version. Pure. */
export function statusRows(
  registry: readonly RegisteredMigration[],
  applied: readonly AppliedRow[] | null,
): StatusRow[] {
  const byVersion = new Map((applied ?? []).map((r) => [r.version, r]));
  const rows: StatusRow[] = registry.map((m) => {
    const r = byVersion.get(m.version);
    if (r === undefined) {
      return {
        version: m.version,
        name: m.name,
        state: "pending",
        appliedAt: null,
        checksum: "-",
        forced: false,
      };
    }
    return {
      version: m.version,
      name: m.name,
      state: r.dirty ? "dirty" : "applied",
      appliedAt: r.appliedAt,
      checksum: r.name === m.name && r.checksum === migrationChecksum(m.module) ? "ok" : "DRIFT",
      forced: r.forced,
    };
  });
  const known = new Set(registry.map((m) => m.version));
  for (const r of applied ?? []) {
    if (known.has(r.version)) continue;
    rows.push({
      version: r.version,
      name: r.name,
      state: "not in this binary",
      appliedAt: r.appliedAt,
      checksum: "-",
      forced: r.forced,
    });
  }
  return rows.sort((a, b) => a.version - b.version);
}

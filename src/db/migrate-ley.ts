// ley under the hood. ley 0.8.1 decides WHAT to run (diffing applied names against the list
// of migrations, ordering downs); this driver decides HOW: one reserved postgres.js
// connection (the one holding the migration lock), one transaction per file together with
// its bookkeeping row, and sha256 checksums. ley's own file lookup walks a directory, which
// does not exist inside the compiled binary, so its `glob` is replaced by a lookup into the
// static registry. ley has no "next N" for down and no lock/force/version/drop/checksums:
// those live in the driver (a per-run `limit`) and in migrator.ts around ley.
import { basename } from "node:path";
import * as ley from "ley";
import leyUtil from "ley/lib/util.js";
import type { Sql } from "./client.ts";
import { isConnectionError } from "./errors.ts";
import type { Conn } from "./migrate-lock.ts";
import type { MigrationModule, RegisteredMigration } from "./registry.ts";

export type Direction = "up" | "down";

/** A migration file failed; its transaction (if any) was rolled back. */
export class MigrationFailedError extends Error {
  constructor(
    readonly migration: string,
    readonly direction: Direction,
    readonly sqlError: unknown,
    readonly leftDirty: boolean,
  ) {
    const err = sqlError as { message?: string; code?: string };
    const reason = (err?.message ?? String(sqlError)).replace(/\s+/g, " ").trim();
    const code =
      typeof err?.code === "string" && /^[0-9A-Z]{5}$/.test(err.code) ? ` (SQLSTATE ${err.code})` : "";
    const after = leftDirty
      ? "; it is not transactional, so the schema is now DIRTY: repair it by hand, then run `paybridge migrate force V`"
      : "; rolled back, nothing from this file was applied";
    super(`migration ${migration} (${direction}) failed: ${reason}${code}${after}`);
    this.name = "MigrationFailedError";
  }
}

/** The database connection went away (also inside a MigrationFailedError). */
export function connectionLost(err: unknown): boolean {
  return isConnectionError(err instanceof MigrationFailedError ? err.sqlError : err);
}

/** sha256 of the migration's SQL source (up and down), hex. */
export function migrationChecksum(module: MigrationModule): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(module.source.up);
  // A separator that cannot occur in SQL text keeps "ab"+"c" and "a"+"bc" apart.
  h.update("\u0000");
  h.update(module.source.down);
  return h.digest("hex");
}

/** Creates the bookkeeping table when missing. Only ever called while holding the lock. */
export async function ensureBookkeeping(conn: Sql): Promise<void> {
  await conn`
    CREATE TABLE IF NOT EXISTS paybridge_schema_migrations (
      version     integer PRIMARY KEY CHECK (version > 0),
      name        text NOT NULL UNIQUE,
      checksum    text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
      applied_at  timestamptz NOT NULL DEFAULT now(),
      duration_ms integer,
      dirty       boolean NOT NULL DEFAULT false,
      forced      boolean NOT NULL DEFAULT false
    )`;
}

// ley's glob receives join(cwd, opts.dir); opts.dir carries a key into this map, so
// concurrent runs with different registries (tests) never see each other's list.
const registries = new Map<string, readonly RegisteredMigration[]>();
let runSeq = 0;
let lookupInstalled = false;

function installRegistryLookup(): void {
  if (lookupInstalled) return;
  leyUtil.glob = async (dir: string) => {
    const list = registries.get(basename(dir));
    if (list === undefined) throw new Error(`internal: no migration registry for ${basename(dir)}`);
    return list.map((m) => ({ name: m.name, abs: m.name }));
  };
  lookupInstalled = true;
}

type RunContext = {
  conn: Conn;
  byName: Map<string, RegisteredMigration>;
  /** At most this many files per run (ley itself only knows "one" or "all"). */
  limit: number | undefined;
  done: string[];
  onDone: (name: string, direction: Direction, ms: number) => void;
};

async function applyOne(ctx: RunContext, m: RegisteredMigration, direction: Direction): Promise<void> {
  const { conn } = ctx;
  const sql = conn as unknown as Sql;
  const checksum = migrationChecksum(m.module);
  const started = performance.now();
  const run = direction === "up" ? m.module.up : m.module.down;
  if (m.module.transactional === false) {
    // Non-transactional (e.g. CREATE INDEX CONCURRENTLY): mark dirty first so a crash or an
    // error in the middle is visible as "N (dirty)" instead of silently half-applied.
    if (direction === "up") {
      await conn`INSERT INTO paybridge_schema_migrations (version, name, checksum, dirty)
                 VALUES (${m.version}, ${m.name}, ${checksum}, true)`;
    } else {
      await conn`UPDATE paybridge_schema_migrations SET dirty = true WHERE version = ${m.version}`;
    }
    try {
      await run(sql);
    } catch (err) {
      throw new MigrationFailedError(m.name, direction, err, true);
    }
    const ms = Math.round(performance.now() - started);
    if (direction === "up") {
      await conn`UPDATE paybridge_schema_migrations SET dirty = false, applied_at = now(), duration_ms = ${ms}
                 WHERE version = ${m.version}`;
    } else {
      await conn`DELETE FROM paybridge_schema_migrations WHERE version = ${m.version}`;
    }
    ctx.onDone(m.name, direction, ms);
    return;
  }
  // The file and its bookkeeping row commit together or not at all. A reserved postgres.js
  // connection has no .begin(), so the transaction is spelled out on it.
  await conn`BEGIN`;
  try {
    await run(sql);
    const ms = Math.round(performance.now() - started);
    if (direction === "up") {
      await conn`INSERT INTO paybridge_schema_migrations (version, name, checksum, duration_ms)
                 VALUES (${m.version}, ${m.name}, ${checksum}, ${ms})`;
    } else {
      await conn`DELETE FROM paybridge_schema_migrations WHERE version = ${m.version}`;
    }
    await conn`COMMIT`;
    ctx.onDone(m.name, direction, ms);
  } catch (err) {
    // After a lost connection there is nothing to roll back (the session ended with it), and
    // the dead reserved connection must not be used again (migrator.ts withLock).
    if (!connectionLost(err)) await conn`ROLLBACK`.catch(() => {});
    throw err instanceof MigrationFailedError ? err : new MigrationFailedError(m.name, direction, err, false);
  }
}

function driverFor(ctx: RunContext) {
  return {
    connect: () => ctx,
    setup: async (c: RunContext) => {
      await ensureBookkeeping(c.conn as unknown as Sql);
      return await c.conn<{ name: string }[]>`SELECT name FROM paybridge_schema_migrations ORDER BY version`;
    },
    loop: async (c: RunContext, files: { name: string }[], method: Direction) => {
      const todo = c.limit === undefined ? files : files.slice(0, c.limit);
      for (const f of todo) {
        const m = c.byName.get(f.name);
        if (m === undefined) throw new Error(`migration ${f.name} is not in this binary's registry`);
        await applyOne(c, m, method);
        c.done.push(f.name);
      }
    },
    // The connection belongs to the caller (it holds the lock); ley must not close it.
    end: () => {},
  };
}

export type LeyRun = {
  conn: Conn;
  registry: readonly RegisteredMigration[];
  direction: Direction;
  limit: number | undefined;
  onDone: (name: string, direction: Direction, ms: number) => void;
};

/** Runs ley up (pending, in order) or down (applied, newest first), at most `limit` files. */
export async function runLey(run: LeyRun): Promise<string[]> {
  installRegistryLookup();
  const key = `paybridge-registry-${++runSeq}`;
  registries.set(key, run.registry);
  const ctx: RunContext = {
    conn: run.conn,
    byName: new Map(run.registry.map((m) => [m.name, m])),
    limit: run.limit,
    done: [],
    onDone: run.onDone,
  };
  const driver = driverFor(ctx) as unknown as ley.Driver;
  try {
    if (run.direction === "up") await ley.up({ driver, config: {}, dir: key });
    else await ley.down({ driver, config: {}, dir: key, all: true });
    return ctx.done;
  } finally {
    registries.delete(key);
  }
}

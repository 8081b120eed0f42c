// `paybridge migrate <verb> [args]` (SPEC §7): argument parsing, output and exit codes.
// The work itself is in src/db/migrator.ts.
import { loadConfig, redactUrl } from "../config.ts";
import { createSql, type Sql } from "../db/client.ts";
import {
  CreateMigrationError,
  createMigration,
  MIGRATION_NAME_PATTERN,
  sourceRoot,
} from "../db/migrate-create.ts";
import {
  formatVersion,
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
  readApplied,
  type StatusRow,
  stateOf,
  statusRows,
} from "../db/migrator.ts";
import { MIGRATIONS } from "../db/registry.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./usage.ts";

/** Migrations may legitimately run for a long time (index builds on big tables). */
export const MIGRATE_STATEMENT_TIMEOUT_MS = 3_600_000;
/** The lock connection plus one spare; the migrator itself uses one connection. */
export const MIGRATE_POOL_MAX = 2;

export const MIGRATE_USAGE = `Usage: paybridge migrate <verb> [args]

  up [N]          apply all pending migrations (or the next N); prints each applied name
  down [N]        roll back the last N applied migrations (default 1)
  down --all      roll back every applied migration
  goto V          migrate up or down to exactly version V (0 = nothing applied)
  version         print the current version: 3, 3 (dirty) or none
  status          every migration: applied/pending, applied at, checksum state
  force V         record V as the current version and clear dirty, running no SQL (recovery)
  drop --force    drop every table, view, sequence, function and type PayBridge created
  create NAME     (source checkout only) write the next migration module + SQL pair, NAME [a-z0-9_]{1,60}
  help            this text

Concurrent migrators wait for each other (MIGRATE_LOCK_TIMEOUT_SECONDS, default 300).
`;

export type MigrateCommand =
  | { verb: "up"; limit: number | undefined }
  | { verb: "down"; limit: number | "all" }
  | { verb: "goto"; version: number }
  | { verb: "version" }
  | { verb: "status" }
  | { verb: "force"; version: number }
  | { verb: "drop" }
  | { verb: "create"; name: string }
  | { verb: "help" };

function count(verb: string, raw: string, min: number): number {
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min) {
    throw new UsageError(
      `${verb}: expected ${min === 0 ? "a version number (0 or more)" : "a positive count"}, got "${raw.slice(0, 40)}"`,
    );
  }
  return Number(raw);
}

function noMore(verb: string, rest: string[]): void {
  if (rest.length > 0) throw new UsageError(`${verb}: unexpected argument "${rest[0]!.slice(0, 40)}"`);
}

/** argv after `migrate` → a command. Throws UsageError (exit 2) for anything malformed. */
export function parseMigrateArgs(args: readonly string[]): MigrateCommand {
  const [verb, ...rest] = args;
  switch (verb) {
    case undefined:
      throw new UsageError("missing verb (see `paybridge migrate help`)");
    case "up": {
      const [n, ...extra] = rest;
      noMore(verb, extra);
      return { verb, limit: n === undefined ? undefined : count(verb, n, 1) };
    }
    case "down": {
      const [n, ...extra] = rest;
      noMore(verb, extra);
      if (n === "--all") return { verb, limit: "all" };
      return { verb, limit: n === undefined ? 1 : count(verb, n, 1) };
    }
    case "goto":
    case "force": {
      const [v, ...extra] = rest;
      if (v === undefined) throw new UsageError(`${verb}: missing version V`);
      noMore(verb, extra);
      return { verb, version: count(verb, v, 0) };
    }
    case "version":
    case "status":
    case "help":
    case "--help":
    case "-h":
      noMore(verb, rest);
      return { verb: verb === "--help" || verb === "-h" ? "help" : verb };
    case "drop": {
      const [flag, ...extra] = rest;
      if (flag !== "--force") {
        throw new UsageError(
          flag === undefined
            ? "drop refuses to run without --force (it deletes every PayBridge table and its data)"
            : `drop: unexpected argument "${flag.slice(0, 40)}" (only --force)`,
        );
      }
      noMore(verb, extra);
      return { verb };
    }
    case "create": {
      const [name, ...extra] = rest;
      if (name === undefined) throw new UsageError("create: missing NAME");
      noMore(verb, extra);
      if (!MIGRATION_NAME_PATTERN.test(name)) {
        throw new UsageError(`create: NAME must match [a-z0-9_]{1,60} (got "${name.slice(0, 40)}")`);
      }
      return { verb, name };
    }
    default:
      throw new UsageError(`unknown verb "${verb.slice(0, 40)}" (see \`paybridge migrate help\`)`);
  }
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s + " ".repeat(n - s.length);
}

export function formatStatus(rows: readonly StatusRow[]): string {
  const nameWidth = Math.max(4, ...rows.map((r) => r.name.length)) + 2;
  const lines = [
    `${pad("VERSION", 9)}${pad("NAME", nameWidth)}${pad("STATE", 20)}${pad("APPLIED AT", 26)}CHECKSUM`,
  ];
  for (const r of rows) {
    const state = r.forced && r.state === "applied" ? "applied (forced)" : r.state;
    const at = r.appliedAt === null ? "-" : r.appliedAt.toISOString();
    lines.push(
      `${pad(String(r.version), 9)}${pad(r.name, nameWidth)}${pad(state, 20)}${pad(at, 26)}${r.checksum}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

// Errors that mean "could not talk to the database at all".
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "28P01", // invalid password
  "28000", // invalid authorization
  "3D000", // database does not exist
  "57P03", // cannot connect now (starting up)
]);

/** One line, never a stack, never the password. */
export function describeError(err: unknown, databaseUrl: string): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = String(e?.message ?? err)
    .replace(/\s+/g, " ")
    .trim();
  const code = typeof e?.code === "string" ? e.code : "";
  if (CONNECTION_CODES.has(code)) {
    const u = new URL(redactUrl(databaseUrl));
    return `cannot use the database at ${u.hostname}:${u.port || "5432"}${u.pathname}: ${message}${/^[0-9A-Z]{5}$/.test(code) ? "" : ` (${code})`}`;
  }
  // A password in a URL could appear inside a driver message: never print it.
  const password = (() => {
    try {
      return decodeURIComponent(new URL(databaseUrl).password);
    } catch {
      return "";
    }
  })();
  return password.length > 0 ? message.split(password).join("***") : message;
}

async function run(
  cmd: Exclude<MigrateCommand, { verb: "help" | "create" }>,
  sql: Sql,
  lockTimeoutSeconds: number,
) {
  const out = (s: string) => process.stdout.write(s);
  const opts = {
    lockTimeoutSeconds,
    log: (line: string) => process.stderr.write(`paybridge migrate: ${line}\n`),
    onMigrated: (name: string, direction: "up" | "down", ms: number) =>
      out(`${direction === "up" ? "applied " : "reverted"} ${name} (${ms} ms)\n`),
  };
  switch (cmd.verb) {
    case "up": {
      const applied = await migrateUp(sql, { ...opts, limit: cmd.limit });
      if (applied.length === 0) out("no change\n");
      return;
    }
    case "down": {
      const reverted = await migrateDown(sql, { ...opts, limit: cmd.limit });
      if (reverted.length === 0) out("no change\n");
      return;
    }
    case "goto": {
      const r = await migrateGoto(sql, cmd.version, opts);
      if (r.applied.length + r.reverted.length === 0) out("no change\n");
      return;
    }
    case "version": {
      out(`${formatVersion(stateOf(MIGRATIONS, await readApplied(sql)))}\n`);
      return;
    }
    case "status": {
      const applied = await readApplied(sql);
      const state = stateOf(MIGRATIONS, applied);
      const rows = statusRows(MIGRATIONS, applied);
      const pending = rows.filter((r) => r.state === "pending").length;
      out(formatStatus(rows));
      out(
        `version ${formatVersion(state)}; ${pending} pending${state.drift.length > 0 ? `; DRIFT in ${state.drift.join(", ")}` : ""}\n`,
      );
      return;
    }
    case "force": {
      await migrateForce(sql, cmd.version, opts);
      out(`forced version ${cmd.version === 0 ? "none" : cmd.version}\n`);
      return;
    }
    case "drop": {
      const n = await migrateDrop(sql, opts);
      out(`dropped everything PayBridge created (${n} tables and views)\n`);
      return;
    }
    default: {
      const never: never = cmd;
      throw new Error(`unhandled verb ${(never as { verb: string }).verb}`);
    }
  }
}

export async function migrateCommand(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<number> {
  const cmd = parseMigrateArgs(args);
  if (cmd.verb === "help") {
    process.stdout.write(MIGRATE_USAGE);
    return EXIT_OK;
  }
  if (cmd.verb === "create") {
    const root = sourceRoot();
    if (root === null) {
      process.stderr.write(
        "paybridge migrate: create works only from a source checkout (make migrate-create NAME=...); this binary has its migrations compiled in\n",
      );
      return EXIT_FAILURE;
    }
    try {
      for (const f of createMigration(root, cmd.name)) process.stdout.write(`wrote ${f}\n`);
      return EXIT_OK;
    } catch (err) {
      if (!(err instanceof CreateMigrationError)) throw err;
      process.stderr.write(`paybridge migrate: ${err.message}\n`);
      return EXIT_FAILURE;
    }
  }
  const config = loadConfig(env, "migrate");
  const sql = createSql(config, {
    applicationName: "paybridge-migrate",
    max: MIGRATE_POOL_MAX,
    statementTimeoutMs: MIGRATE_STATEMENT_TIMEOUT_MS,
  });
  try {
    await run(cmd, sql, config.migrateLockTimeoutSeconds);
    return EXIT_OK;
  } catch (err) {
    const known =
      err instanceof MigrationFailedError ||
      err instanceof MigrationDriftError ||
      err instanceof MigrationDirtyError ||
      err instanceof MigrationLockTimeoutError ||
      err instanceof MigrationRequestError;
    process.stderr.write(
      `paybridge migrate: ${known ? err.message : describeError(err, config.databaseUrl)}\n`,
    );
    return EXIT_FAILURE;
  } finally {
    await sql.end({ timeout: 5 }).catch(() => {});
  }
}

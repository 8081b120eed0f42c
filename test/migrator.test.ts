// The migrator's pure parts: argument parsing, checksums, version formatting, status rows,
// `create`'s text edits, and the registry == files on disk.
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeError, formatStatus, parseMigrateArgs } from "../src/cli/migrate.ts";
import { UsageError } from "../src/cli/usage.ts";
import { createMigration, nextVersion, registerInText } from "../src/db/migrate-create.ts";
import {
  type AppliedRow,
  driftOf,
  formatVersion,
  migrationChecksum,
  stateOf,
  statusRows,
  validateRegistry,
} from "../src/db/migrator.ts";
import { EXPECTED_SCHEMA_VERSION, MIGRATIONS, type RegisteredMigration } from "../src/db/registry.ts";

const ROOT = join(import.meta.dir, "..");

describe("parseMigrateArgs", () => {
  test("accepts every verb of SPEC §7", () => {
    expect(parseMigrateArgs(["up"])).toEqual({ verb: "up", limit: undefined });
    expect(parseMigrateArgs(["up", "2"])).toEqual({ verb: "up", limit: 2 });
    expect(parseMigrateArgs(["down"])).toEqual({ verb: "down", limit: 1 });
    expect(parseMigrateArgs(["down", "3"])).toEqual({ verb: "down", limit: 3 });
    expect(parseMigrateArgs(["down", "--all"])).toEqual({ verb: "down", limit: "all" });
    expect(parseMigrateArgs(["goto", "0"])).toEqual({ verb: "goto", version: 0 });
    expect(parseMigrateArgs(["goto", "4"])).toEqual({ verb: "goto", version: 4 });
    expect(parseMigrateArgs(["version"])).toEqual({ verb: "version" });
    expect(parseMigrateArgs(["status"])).toEqual({ verb: "status" });
    expect(parseMigrateArgs(["force", "3"])).toEqual({ verb: "force", version: 3 });
    expect(parseMigrateArgs(["drop", "--force"])).toEqual({ verb: "drop" });
    expect(parseMigrateArgs(["create", "add_thing_2"])).toEqual({ verb: "create", name: "add_thing_2" });
    expect(parseMigrateArgs(["help"])).toEqual({ verb: "help" });
    expect(parseMigrateArgs(["--help"])).toEqual({ verb: "help" });
  });

  test.each([
    [[], "missing verb"],
    [["sideways"], 'unknown verb "sideways"'],
    [["up", "0"], "positive count"],
    [["up", "-1"], "positive count"],
    [["up", "two"], "positive count"],
    [["up", "1", "2"], 'unexpected argument "2"'],
    [["down", "1.5"], "positive count"],
    [["down", "--all", "x"], 'unexpected argument "x"'],
    [["goto"], "missing version"],
    [["goto", "v3"], "version number"],
    [["force"], "missing version"],
    [["force", "3", "4"], 'unexpected argument "4"'],
    [["version", "x"], 'unexpected argument "x"'],
    [["status", "--all"], 'unexpected argument "--all"'],
    [["drop"], "refuses to run without --force"],
    [["drop", "--yes"], 'unexpected argument "--yes"'],
    [["drop", "--force", "now"], 'unexpected argument "now"'],
    [["create"], "missing NAME"],
    [["create", "Add-Thing"], "[a-z0-9_]{1,60}"],
    [["create", "x".repeat(61)], "[a-z0-9_]{1,60}"],
    [["create", "a", "b"], 'unexpected argument "b"'],
    [["help", "me"], 'unexpected argument "me"'],
  ] as [string[], string][])("%p → UsageError", (args, message) => {
    expect(() => parseMigrateArgs(args)).toThrow(UsageError);
    expect(() => parseMigrateArgs(args)).toThrow(message);
  });
});

describe("checksums, versions, status", () => {
  const mod = (up: string, down: string): RegisteredMigration["module"] => ({
    source: { up, down },
    up: () => undefined,
    down: () => undefined,
  });

  test("sha256 of up and down, sensitive to either and to where they split", () => {
    const c = migrationChecksum(mod("CREATE TABLE a ();", "DROP TABLE a;"));
    expect(c).toMatch(/^[0-9a-f]{64}$/);
    expect(migrationChecksum(mod("CREATE TABLE a ();", "DROP TABLE a;"))).toBe(c);
    expect(migrationChecksum(mod("CREATE TABLE a ();", "DROP TABLE a ;"))).not.toBe(c);
    expect(migrationChecksum(mod("CREATE TABLE a (); ", "DROP TABLE a;"))).not.toBe(c);
    expect(migrationChecksum(mod("ab", "c"))).not.toBe(migrationChecksum(mod("a", "bc")));
    const expected = new Bun.CryptoHasher("sha256").update("x\u0000y").digest("hex");
    expect(migrationChecksum(mod("x", "y"))).toBe(expected);
  });

  test("version formatting", () => {
    expect(formatVersion({ version: null, dirty: false })).toBe("none");
    expect(formatVersion({ version: 3, dirty: false })).toBe("3");
    expect(formatVersion({ version: 3, dirty: true })).toBe("3 (dirty)");
  });

  const row = (m: RegisteredMigration, over: Partial<AppliedRow> = {}): AppliedRow => ({
    version: m.version,
    name: m.name,
    checksum: migrationChecksum(m.module),
    appliedAt: new Date("2030-01-02T03:04:05Z"),
    durationMs: 1,
    dirty: false,
    forced: false,
    ...over,
  });

  test("state, drift and status rows", () => {
    const [m1, m2, m3] = MIGRATIONS as [RegisteredMigration, RegisteredMigration, RegisteredMigration];
    const applied = [row(m1), row(m2, { checksum: "0".repeat(64) })];
    expect(driftOf(MIGRATIONS, applied)).toEqual([m2.name]);
    expect(stateOf(MIGRATIONS, null)).toEqual({ version: null, dirty: false, drift: [] });
    expect(stateOf(MIGRATIONS, applied)).toEqual({ version: 2, dirty: false, drift: [m2.name] });
    const rows = statusRows(MIGRATIONS, [
      ...applied,
      row(m3, { dirty: true }),
      { ...row(m3), version: 99_999, name: "99999_future.ts" },
    ]);
    const expected: [number, string, string][] = [
      [1, "applied", "ok"],
      [2, "applied", "DRIFT"],
      [3, "dirty", "ok"],
      ...MIGRATIONS.slice(3).map((m): [number, string, string] => [m.version, "pending", "-"]),
      [99_999, "not in this binary", "-"],
    ];
    expect(rows.map((r): [number, string, string] => [r.version, r.state, r.checksum])).toEqual(expected);
    const text = formatStatus(rows);
    expect(text.split("\n")[0]).toMatch(/^VERSION\s+NAME\s+STATE\s+APPLIED AT\s+CHECKSUM$/);
    expect(text).toContain("2030-01-02T03:04:05.000Z");
  });
});

describe("the registry", () => {
  test("equals the files in migrations/: every NNNNN_*.ts is registered and has its SQL pair", () => {
    const modules = readdirSync(join(ROOT, "migrations")).filter((f) => f.endsWith(".ts"));
    expect(modules.length).toBeGreaterThan(0);
    for (const f of modules) expect(f).toMatch(/^\d{5}_[a-z0-9_]{1,60}\.ts$/);
    expect(MIGRATIONS.map((m) => m.name)).toEqual(modules.sort());
    const sqlFiles = new Set(readdirSync(join(ROOT, "migrations", "sql")));
    for (const m of MIGRATIONS) {
      const id = m.name.replace(/\.ts$/, "");
      expect(sqlFiles.has(`${id}.up.sql`)).toBe(true);
      expect(sqlFiles.has(`${id}.down.sql`)).toBe(true);
      expect(m.module.source.up).toBe(readFileSync(join(ROOT, "migrations", "sql", `${id}.up.sql`), "utf8"));
      expect(m.module.source.down).toBe(
        readFileSync(join(ROOT, "migrations", "sql", `${id}.down.sql`), "utf8"),
      );
      expect(typeof m.module.up).toBe("function");
      expect(typeof m.module.down).toBe("function");
    }
    for (const f of sqlFiles) expect(modules).toContain(f.replace(/\.(up|down)\.sql$/, ".ts"));
    expect(validateRegistry(MIGRATIONS)).toEqual([]);
    expect(EXPECTED_SCHEMA_VERSION).toBe(MIGRATIONS.at(-1)!.version);
  });

  test("validateRegistry catches disorder, duplicates and bad names", () => {
    const m = (name: string, version: number) => ({ ...MIGRATIONS[0]!, name, version });
    expect(validateRegistry([m("00002_b.ts", 2), m("00001_a.ts", 1)])).toHaveLength(1);
    expect(validateRegistry([m("00001_a.ts", 1), m("00001_b.ts", 1)])).toHaveLength(1);
    expect(validateRegistry([m("1_a.ts", 1)])).toHaveLength(1);
    expect(validateRegistry([m("00003_a.ts", 2)])).toHaveLength(1);
  });
});

describe("create", () => {
  const registry = `import * as m00001 from "../../migrations/00001_a.ts";
import * as m00002 from "../../migrations/00002_b.ts";
import type { Sql } from "./client.ts";

export const MIGRATIONS = [
  { name: "00001_a.ts", version: 1, module: m00001 },
  { name: "00002_b.ts", version: 2, module: m00002 },
  // @registry-end (marker)
];
`;

  test("nextVersion and registerInText", () => {
    expect(nextVersion(["00001_a.ts", "00007_x.ts", "sql"], registry)).toBe(8);
    expect(nextVersion([], registry)).toBe(3);
    const out = registerInText(registry, 3, "add_c");
    expect(out).toContain(
      'import * as m00002 from "../../migrations/00002_b.ts";\nimport * as m00003 from "../../migrations/00003_add_c.ts";\n',
    );
    expect(out).toContain(
      '  { name: "00003_add_c.ts", version: 3, module: m00003 },\n  // @registry-end (marker)',
    );
    expect(() => registerInText("no marker", 3, "x")).toThrow("@registry-end");
  });

  test("writes the module, the SQL pair and the registry entry in a checkout", () => {
    const root = mkdtempSync(join(tmpdir(), "pb-create-"));
    try {
      mkdirSync(join(root, "src", "db"), { recursive: true });
      cpSync(join(ROOT, "migrations"), join(root, "migrations"), { recursive: true });
      cpSync(join(ROOT, "src", "db", "registry.ts"), join(root, "src", "db", "registry.ts"));
      const v = MIGRATIONS.at(-1)!.version + 1;
      const id = `${String(v).padStart(5, "0")}_add_widgets`;
      expect(createMigration(root, "add_widgets")).toEqual([
        `migrations/${id}.ts`,
        `migrations/sql/${id}.up.sql`,
        `migrations/sql/${id}.down.sql`,
        "src/db/registry.ts",
      ]);
      expect(existsSync(join(root, "migrations", "sql", `${id}.up.sql`))).toBe(true);
      expect(readFileSync(join(root, "migrations", `${id}.ts`), "utf8")).toBe(
        readFileSync(join(ROOT, "migrations", MIGRATIONS[0]!.name), "utf8").replaceAll(
          MIGRATIONS[0]!.name.replace(".ts", ""),
          id,
        ),
      );
      const reg = readFileSync(join(root, "src", "db", "registry.ts"), "utf8");
      expect(reg).toContain(
        `{ name: "${id}.ts", version: ${v}, module: m${id.slice(0, 5)} },\n  // @registry-end`,
      );
      expect(() => createMigration(root, "add_widgets")).toThrow("already exists");
      expect(() => createMigration(root, "Bad Name")).toThrow("[a-z0-9_]");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("describeError", () => {
  test("one line, host and database named, password never printed", () => {
    const url = "postgres://app:s3cret-pw@db.internal:6543/payments";
    const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:6543"), { code: "ECONNREFUSED" });
    const line = describeError(refused, url);
    expect(line).toBe(
      "cannot use the database at db.internal:6543/payments: connect ECONNREFUSED 10.0.0.1:6543 (ECONNREFUSED)",
    );
    const auth = Object.assign(new Error('password authentication failed for user "app"'), { code: "28P01" });
    expect(describeError(auth, url)).toBe(
      'cannot use the database at db.internal:6543/payments: password authentication failed for user "app"',
    );
    const leaky = new Error("bad\nthing s3cret-pw here");
    expect(describeError(leaky, url)).toBe("bad thing *** here");
  });
});

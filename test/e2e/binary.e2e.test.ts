// The compiled executable, copied ALONE into an empty directory (no node_modules, no
// migrations folder, no config files), driven the way an operator or an init container would.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { EXPECTED_SCHEMA_VERSION, MIGRATIONS } from "../../src/db/registry.ts";
import { createEmptyDatabase, type TestDatabase } from "../helpers/db.ts";
import { ensureBinary } from "./ensure-binary.ts";

/** Upper bound for serve to answer /live; generous for a loaded 2-core CI machine. */
const LIVE_DEADLINE_MS = 15_000;
/** Per-test bound: several process spawns each, on a shared 2-core machine. */
const E2E_TEST_TIMEOUT_MS = 60_000;

let dir: string | undefined;
let exe: string;
const dbs: TestDatabase[] = [];

/** `make build` may run first (bundling + compiling takes a few seconds, more under load). */
const BUILD_TIMEOUT_MS = 180_000;

beforeAll(() => {
  const built = ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "pb-e2e-"));
  exe = join(dir, "paybridge");
  copyFileSync(built, exe);
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(dbs.map((db) => db.drop()));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, BUILD_TIMEOUT_MS);

async function freshDb(): Promise<TestDatabase> {
  const db = await createEmptyDatabase("pbe2e");
  dbs.push(db);
  return db;
}

type Run = { code: number; out: string; err: string };

function baseEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  // A minimal environment: nothing leaks in from the developer's shell.
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", DATABASE_URL: url, ...extra };
}

async function pb(args: string[], url: string, extra: Record<string, string> = {}): Promise<Run> {
  const p = Bun.spawn([exe, ...args], {
    cwd: dir!,
    env: baseEnv(url, extra),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, out, err };
}

async function snapshot(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = await sql`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`;
    const rows =
      await sql`SELECT version, name, checksum, dirty FROM paybridge_schema_migrations ORDER BY version`;
    return { tables: tables.map((t) => t.tablename as string), rows: rows.map((r) => ({ ...r })) };
  } finally {
    await sql.end();
  }
}

const all = MIGRATIONS.map((m) => m.name);
const last = MIGRATIONS.at(-1)!;

describe("dist/paybridge alone in an empty directory", () => {
  test(
    "the directory holds only the binary",
    () => {
      expect(readdirSync(dir!)).toEqual(["paybridge"]);
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "migrate up, version, status, down 1, up",
    async () => {
      const db = await freshDb();
      const started = performance.now();
      const up = await pb(["migrate", "up"], db.url);
      const upMs = Math.round(performance.now() - started);
      expect(up.err).toBe("");
      expect(up.code).toBe(0);
      expect(
        up.out
          .trim()
          .split("\n")
          .map((l) => l.split(/\s+/)[1]),
      ).toEqual(all);
      console.log(
        `[figures] migrate up of ${all.length} migrations on an empty database: ${upMs} ms (process exec to exit)`,
      );

      const version = await pb(["migrate", "version"], db.url);
      expect(version).toEqual({ code: 0, out: `${EXPECTED_SCHEMA_VERSION}\n`, err: "" });

      const status = await pb(["migrate", "status"], db.url);
      expect(status.code).toBe(0);
      for (const name of all) expect(status.out).toMatch(new RegExp(`${name}\\s+applied\\s+\\S+Z\\s+ok`));
      expect(status.out).toContain(`version ${EXPECTED_SCHEMA_VERSION}; 0 pending`);

      const down = await pb(["migrate", "down", "1"], db.url);
      expect(down.code).toBe(0);
      expect(down.out).toStartWith(`reverted ${last.name}`);
      expect((await pb(["migrate", "version"], db.url)).out).toBe(`${MIGRATIONS.at(-2)!.version}\n`);
      expect((await pb(["migrate", "status"], db.url)).out).toMatch(new RegExp(`${last.name}\\s+pending`));

      const again = await pb(["migrate", "up"], db.url);
      expect(again.code).toBe(0);
      expect(again.out).toStartWith(`applied  ${last.name}`);
      expect(await pb(["migrate", "up"], db.url)).toEqual({ code: 0, out: "no change\n", err: "" });

      expect((await pb(["migrate", "goto", "2"], db.url)).code).toBe(0);
      expect((await pb(["migrate", "version"], db.url)).out).toBe("2\n");
      expect((await pb(["migrate", "force", "1"], db.url)).code).toBe(0);
      expect((await pb(["migrate", "version"], db.url)).out).toBe("1\n");
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "five concurrent `migrate up`: all exit 0, the schema is created once",
    async () => {
      const db = await freshDb();
      const runs = await Promise.all(Array.from({ length: 5 }, () => pb(["migrate", "up"], db.url)));
      for (const r of runs) expect(r.code).toBe(0);
      const appliedLines = runs.flatMap((r) => r.out.split("\n").filter((l) => l.startsWith("applied")));
      expect(appliedLines.map((l) => l.split(/\s+/)[1]).sort()).toEqual([...all].sort());
      expect(runs.filter((r) => r.out === "no change\n").length).toBe(4);
      const snap = await snapshot(db.url);
      expect(snap.rows.map((r) => r.name)).toEqual(all);
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "a failing migration: exit 1, file and SQL error named, tables and bookkeeping unchanged",
    async () => {
      const db = await freshDb();
      expect((await pb(["migrate", "goto", "3"], db.url)).code).toBe(0);
      // 00004 creates idempotency_keys, then outbox: an existing outbox makes it fail half-way.
      const sql = postgres(db.url, { max: 1 });
      await sql`CREATE TABLE outbox (squatter int)`;
      await sql.end();
      const before = await snapshot(db.url);
      const r = await pb(["migrate", "up"], db.url);
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      const lines = r.err.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(MIGRATIONS[3]!.name);
      expect(lines[0]).toContain('relation "outbox" already exists');
      expect(await snapshot(db.url)).toEqual(before);
      expect(before.tables).not.toContain("idempotency_keys");
      expect((await pb(["migrate", "version"], db.url)).out).toBe("3\n");
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "drift: a changed stored checksum makes up refuse, naming the file",
    async () => {
      const db = await freshDb();
      expect((await pb(["migrate", "up", "2"], db.url)).code).toBe(0);
      const sql = postgres(db.url, { max: 1 });
      await sql`UPDATE paybridge_schema_migrations SET checksum = ${"0".repeat(64)} WHERE version = 2`;
      await sql.end();
      const before = await snapshot(db.url);
      const r = await pb(["migrate", "up"], db.url);
      expect(r.code).toBe(1);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toContain(`drift: ${MIGRATIONS[1]!.name}`);
      expect(await snapshot(db.url)).toEqual(before);
      expect((await pb(["migrate", "status"], db.url)).out).toMatch(
        new RegExp(`${MIGRATIONS[1]!.name}\\s+applied\\s+\\S+\\s+DRIFT`),
      );
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "drop refuses without --force (exit 2) and drops everything with it",
    async () => {
      const db = await freshDb();
      expect((await pb(["migrate", "up"], db.url)).code).toBe(0);
      const refused = await pb(["migrate", "drop"], db.url);
      expect(refused.code).toBe(2);
      expect(refused.err).toContain("--force");
      expect((await snapshot(db.url)).rows).toHaveLength(all.length);
      const dropped = await pb(["migrate", "drop", "--force"], db.url);
      expect(dropped.code).toBe(0);
      expect((await pb(["migrate", "version"], db.url)).out).toBe("none\n");
      const sql = postgres(db.url, { max: 1 });
      const [left] =
        await sql`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace`;
      await sql.end();
      expect(left?.n).toBe(0);
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "bad arguments exit 2 with one line; create is refused in the binary",
    async () => {
      const url = "postgres://postgres@127.0.0.1:1/none";
      for (const args of [
        ["migrate", "sideways"],
        ["migrate"],
        ["migrate", "up", "abc"],
        ["migrate", "force"],
        ["nonsense"],
      ]) {
        const r = await pb(args, url);
        expect(r.code).toBe(2);
        expect(r.out).toBe("");
        expect(r.err.length).toBeGreaterThan(0);
      }
      const create = await pb(["migrate", "create", "thing"], url);
      expect(create.code).toBe(1);
      expect(create.err).toContain("source checkout");
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "an unreachable or missing database: exit 1, one line, no password",
    async () => {
      const closed = await pb(["migrate", "up"], "postgres://app:s3cretpw@127.0.0.1:1/paybridge");
      expect(closed.code).toBe(1);
      expect(closed.err.trim().split("\n")).toHaveLength(1);
      expect(closed.err).toContain("127.0.0.1:1");
      expect(closed.err).not.toContain("s3cretpw");
      const missing = await pb(
        ["migrate", "status"],
        "postgres://postgres@127.0.0.1:5432/pb_no_such_database_h1",
      );
      expect(missing.code).toBe(1);
      expect(missing.err.trim().split("\n")).toHaveLength(1);
      expect(missing.err).toContain('database "pb_no_such_database_h1" does not exist');
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "version and help",
    async () => {
      const v = await pb(["version"], "postgres://x@127.0.0.1:1/x");
      expect(v.code).toBe(0);
      expect(v.out).toMatch(/^paybridge \d+\.\d+\.\d+\n/);
      expect(v.out).toContain(`bun ${Bun.version}`);
      const h = await pb(["help"], "postgres://x@127.0.0.1:1/x");
      expect(h.code).toBe(0);
      expect(h.out).toContain("paybridge migrate <verb>");
      const mh = await pb(["migrate", "help"], "postgres://x@127.0.0.1:1/x");
      expect(mh.code).toBe(0);
      expect(mh.out).toContain("drop --force");
    },
    E2E_TEST_TIMEOUT_MS,
  );

  test(
    "serve answers GET /live, then exits 0 on SIGTERM",
    async () => {
      const db = await freshDb();
      expect((await pb(["migrate", "up"], db.url)).code).toBe(0);
      for (let attempt = 1; ; attempt++) {
        const probe = Bun.serve({ port: 0, fetch: () => new Response() });
        const port = probe.port;
        probe.stop(true);
        const started = performance.now();
        const p = Bun.spawn([exe, "serve"], {
          cwd: dir!,
          env: baseEnv(db.url, {
            PORT: String(port),
            HOST: "127.0.0.1",
            LOG_LEVEL: "warn",
            OUTBOX_RELAY: "off",
          }),
          stdout: "pipe",
          stderr: "pipe",
        });
        let liveMs: number | null = null;
        while (p.exitCode === null && performance.now() - started < LIVE_DEADLINE_MS) {
          const res = await fetch(`http://127.0.0.1:${port}/live`).catch(() => null);
          if (res?.status === 200) {
            liveMs = Math.round(performance.now() - started);
            break;
          }
          await Bun.sleep(10);
        }
        if (liveMs === null && p.exitCode !== null && attempt < 3) continue; // port taken meanwhile: retry
        expect(liveMs).not.toBeNull();
        await Bun.sleep(500); // let it settle before reading idle RSS
        const status = await Bun.file(`/proc/${p.pid}/status`).text();
        const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        console.log(`[figures] exec → /live 200: ${liveMs} ms; idle RSS ${(rssKb / 1024).toFixed(1)} MiB`);
        p.kill("SIGTERM");
        const code = await p.exited;
        if (code !== 0) console.error(await new Response(p.stderr).text());
        expect(code).toBe(0);
        return;
      }
    },
    E2E_TEST_TIMEOUT_MS,
  );
});

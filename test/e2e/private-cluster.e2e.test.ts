// Things the shared PostgreSQL (trust auth, shared roles) cannot show: a WRONG PASSWORD, and
// the runtime grants of 00005 for a `paybridge_runtime` role. A throw-away cluster with
// scram-sha-256 authentication on a free port, torn down always.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { EXPECTED_SCHEMA_VERSION } from "../../src/db/registry.ts";
import { ensureBinary } from "./ensure-binary.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";
const ADMIN_PASSWORD = "admin-pw-h1";
const RUNTIME_PASSWORD = "runtime-pw-h1";
/** initdb + start + build: seconds normally, more on a loaded 2-core machine. */
const SETUP_TIMEOUT_MS = 180_000;
const TEST_TIMEOUT_MS = 60_000;

const isRoot = process.getuid?.() === 0;
let dir: string | undefined;
let port = 0;
let exe = "";
let started = false;

function asPostgres(args: string[]) {
  const r = Bun.spawnSync(["runuser", "-u", "postgres", "--", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${args[0]} failed: ${r.stderr.toString()}${r.stdout.toString()}`);
}

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

const url = (user: string, password: string, db = "paybridge") =>
  `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;

beforeAll(async () => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), "pb-cluster-"));
  const uid = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim());
  const gid = Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim());
  chownSync(dir, uid, gid);
  const pwfile = join(dir, "pw");
  writeFileSync(pwfile, `${ADMIN_PASSWORD}\n`);
  chownSync(pwfile, uid, gid);
  chmodSync(pwfile, 0o600);
  asPostgres([
    `${PG_BIN}/initdb`,
    "-D",
    join(dir, "data"),
    "-U",
    "postgres",
    "--auth=scram-sha-256",
    `--pwfile=${pwfile}`,
    "--no-sync",
    "-E",
    "UTF8",
  ]);
  for (let attempt = 1; ; attempt++) {
    port = freePort();
    try {
      asPostgres([
        `${PG_BIN}/pg_ctl`,
        "-D",
        join(dir, "data"),
        "-l",
        join(dir, "log"),
        "-w",
        "-o",
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
        "start",
      ]);
      started = true;
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  const admin = postgres(url("postgres", ADMIN_PASSWORD, "postgres"), { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE paybridge`;
  await admin.unsafe(`CREATE ROLE paybridge_runtime LOGIN PASSWORD '${RUNTIME_PASSWORD}'`);
  await admin.end();
  const built = ensureBinary();
  exe = join(dir, "paybridge");
  copyFileSync(built, exe);
}, SETUP_TIMEOUT_MS);

afterAll(() => {
  if (dir === undefined) return;
  if (started) {
    Bun.spawnSync([
      "runuser",
      "-u",
      "postgres",
      "--",
      `${PG_BIN}/pg_ctl`,
      "-D",
      join(dir, "data"),
      "-m",
      "immediate",
      "stop",
    ]);
  }
  rmSync(dir, { recursive: true, force: true });
}, SETUP_TIMEOUT_MS);

async function pb(args: string[], databaseUrl: string) {
  const p = Bun.spawn([exe, ...args], {
    cwd: dir!,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DATABASE_URL: databaseUrl },
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

describe.skipIf(!isRoot)("a private cluster with password authentication", () => {
  test(
    "a wrong password: exit 1, one line, no password echoed, nothing changed",
    async () => {
      const r = await pb(["migrate", "up"], url("postgres", "not-the-password"));
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toContain("password authentication failed");
      expect(r.err).not.toContain("not-the-password");
      const v = await pb(["migrate", "version"], url("postgres", ADMIN_PASSWORD));
      expect(v).toEqual({ code: 0, out: "none\n", err: "" });
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "00005 grants paybridge_runtime what serve needs, and no DDL",
    async () => {
      const up = await pb(["migrate", "up"], url("postgres", ADMIN_PASSWORD));
      expect(up.code).toBe(0);
      const rt = postgres(url("paybridge_runtime", RUNTIME_PASSWORD), { max: 1, onnotice: () => {} });
      try {
        const [u] = await rt`INSERT INTO users (email, full_name) VALUES ('a@example.com', 'A') RETURNING id`;
        await rt`UPDATE users SET full_name = 'B' WHERE id = ${u!.id}`;
        const [w] =
          await rt`INSERT INTO wallets (user_id, currency, kind) VALUES (${u!.id}, 'EUR', 'fiat') RETURNING id`;
        expect(w!.id).toBeString();
        // /ready reads the bookkeeping through the runtime role.
        const [v] = await rt`SELECT max(version)::int AS v FROM paybridge_schema_migrations`;
        expect(v!.v).toBe(EXPECTED_SCHEMA_VERSION);
        await expect(rt`CREATE TABLE intruder (id int)`).rejects.toThrow(/permission denied/);
        await expect(rt`DROP TABLE users`).rejects.toThrow(/must be owner/);
      } finally {
        await rt.end();
      }
      // Rolling 00005 back takes the privileges away again.
      expect((await pb(["migrate", "goto", "4"], url("postgres", ADMIN_PASSWORD))).code).toBe(0);
      const rt2 = postgres(url("paybridge_runtime", RUNTIME_PASSWORD), { max: 1, onnotice: () => {} });
      try {
        await expect(rt2`SELECT count(*) FROM users`).rejects.toThrow(/permission denied/);
      } finally {
        await rt2.end();
      }
    },
    TEST_TIMEOUT_MS,
  );
});

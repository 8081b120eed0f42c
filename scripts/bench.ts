// `make bench`: transfer throughput of PayBridge against the database ceiling.
//
//   1. builds dist/paybridge if missing or stale, creates a fresh database, `migrate up` (binary)
//   2. funds 10,000 wallets (bulk SQL: VERIFIED users, wallets, a balanced opening DEPOSIT)
//   3. starts `paybridge serve` (RATE_LIMIT_ENABLED=false OUTBOX_RELAY=off LOG_LEVEL=warn)
//   4. alternates, for R rounds: wrk on POST /wallets/:id/transfer (uniform pairs, then hot:
//      every transfer credits one wallet) and pgbench on ../shared/bench reference SQL, at the
//      same concurrency; prints medians, p50/p99, errors and the API ÷ pgbench ratio, and per
//      round the CPU per transfer and the transfers per commit (group commit, batcher.ts).
//
// Steady state is what is compared: before the rounds, both sides run each mode for
// --warmup seconds, not counted (the server's JIT compiles the money path, and both databases'
// caches fill; a cold server spent a quarter of its CPU in JIT threads during a first round).
//
// Flags: --seconds N (per run, default 10) --rounds N (default 3) --connections N (default 16)
// --warmup N (seconds per mode and side before the rounds, default 15)
// --pool N (server DB_POOL_MAX, default 2 × CPU cores) --cpu-prof DIR (server from source, profiled).
// Besides throughput it prints the server's and its database backends' CPU per transfer and a
// no-database floor (GET /currencies), which tell framework cost from money-path cost.
// This is a benchmark that prints figures, not a test: nothing here asserts a speed.
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { loadConfig } from "../src/config.ts";
import { mintToken } from "../src/http/auth.ts";

const ROOT = resolve(import.meta.dir, "..");
const BINARY = join(ROOT, "dist/paybridge");
const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const WALLETS = 10_000;
/** Opening balance per wallet in minor units: never the limiting factor. */
const OPENING_BALANCE = 1_000_000_000n;
const JWT_SECRET = "bench-secret-0123456789-abcdefghijklmnop";
const SERVER_READY_TIMEOUT_MS = 20_000;
const WRK_TIMEOUT_SECONDS = 10;

function flag(name: string, fallback: number): number {
  const i = Bun.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Bun.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  return v;
}
const SECONDS = flag("seconds", 10);
const ROUNDS = flag("rounds", 3);
const CONNECTIONS = flag("connections", 16);
const WARMUP = flag("warmup", 15);
/**
 * The server's DB_POOL_MAX: by default twice the CPU cores (the database runs on this machine),
 * the usual sizing of a PostgreSQL pool. The load is the same 16 clients on both sides; the API
 * multiplexes its HTTP clients onto this pool, while each pgbench client is a backend of its own.
 * Measured here with alternating rounds (after migration 00011): pool 4 against 16 gave +23%
 * transfers/s uniform and +20% hot, with 0.90 instead of 1.20 ms of backend CPU per transfer
 * (16 backends on 2 cores mostly wait for each other); pool 8 +5%; pool 3 the same as 4.
 * Since group commit (migration 00012) money postings use only POSTING_LANES of these
 * connections (default 2; printed with the pool).
 */
const POOL = flag("pool", 2 * availableParallelism());
/** `--cpu-prof DIR`: run the server from source under Bun's profiler (markdown profile in DIR). */
const CPU_PROF_DIR = (() => {
  const i = Bun.argv.indexOf("--cpu-prof");
  return i >= 0 ? Bun.argv[i + 1] : undefined;
})();

function refDir(): string {
  for (const d of [join(ROOT, "../shared/bench"), "/work/shared/bench"])
    if (existsSync(join(d, "ref-transfer.sql"))) return d;
  throw new Error("reference SQL not found in ../shared/bench or /work/shared/bench");
}

function run(cmd: string[], env: Record<string, string> = {}): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
}

function must(cmd: string[], env: Record<string, string> = {}): string {
  const r = run(cmd, env);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}):\n${r.out}`);
  return r.out;
}

function ensureBinary(): void {
  const newest = Number(
    must(["bash", "-c", `find ${ROOT}/src ${ROOT}/migrations -type f -printf '%T@\\n' | sort -n | tail -1`]),
  );
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs / 1000 < newest) {
    console.log("building dist/paybridge ...");
    must(["make", "-C", ROOT, "build"]);
  }
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function seed(url: string): Promise<string[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`
    INSERT INTO users (email, full_name, kyc_status)
    SELECT 'bench' || g || '@example.test', 'Bench ' || g, 'VERIFIED' FROM generate_series(1, ${WALLETS}) g`;
  await sql`
    INSERT INTO wallets (user_id, currency, kind, available_balance)
    SELECT id, 'USD', 'fiat', ${OPENING_BALANCE.toString()}::bigint FROM users`;
  // A balanced opening deposit per wallet keeps reconciliation clean.
  await sql`
    WITH tx AS (
      INSERT INTO transactions (type, status, wallet_id, direction, amount, currency, description, actor, processed_at, completed_at)
      SELECT 'DEPOSIT', 'COMPLETED', id, 'credit', available_balance, 'USD', 'bench opening balance',
             '{"id":"bench","role":"admin"}'::jsonb, now(), now() FROM wallets
      RETURNING id, wallet_id, amount)
    INSERT INTO ledger_entries (transaction_id, wallet_id, system_account, currency, amount, balance_after)
    SELECT id, wallet_id, NULL, 'USD', amount, amount FROM tx
    UNION ALL SELECT id, NULL, 'USD', 'USD', -amount, NULL FROM tx`;
  await sql.unsafe("VACUUM ANALYZE");
  const rows = await sql`SELECT id FROM wallets ORDER BY id`;
  await sql.end();
  return rows.map((r) => (r as { id: string }).id);
}

/**
 * Transfers per database transaction during a run: batched postings (src/ledger/batcher.ts)
 * share one transaction, so they share its xmin.
 */
async function postingsPerCommit(db: postgres.Sql, since: Date): Promise<number> {
  const [r] = await db`
    SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS x
      FROM transactions WHERE type = 'TRANSFER' AND created_at >= ${since}`;
  const { n, x } = r as { n: number; x: number };
  return x === 0 ? Number.NaN : n / x;
}

type Figures = {
  tps: number;
  p50?: number;
  p99?: number;
  avg?: number;
  errors: number;
  errorDetail?: string;
};

function latencyMs(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

function wrk(
  port: number,
  mode: "uniform" | "hot",
  files: { wallets: string; token: string },
  seconds = SECONDS,
): Figures {
  const out = must(
    [
      "wrk",
      "--latency",
      // wrk's default 2 s client timeout counts a slow-but-successful answer on a loaded
      // machine as an error; a real failure still shows as a non-2xx answer.
      "--timeout",
      `${WRK_TIMEOUT_SECONDS}s`,
      `-t2`,
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      "-s",
      join(ROOT, "scripts/bench/transfer.lua"),
      `http://127.0.0.1:${port}`,
    ],
    { BENCH_WALLETS: files.wallets, BENCH_TOKEN: files.token, BENCH_MODE: mode },
  );
  const tps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    tps,
    p50: latencyMs(/\s50%\s+([\d.]+\w+)/.exec(out)?.[1]),
    p99: latencyMs(/\s99%\s+([\d.]+\w+)/.exec(out)?.[1]),
    errors: non2xx + sockErrors,
    errorDetail: `non-2xx ${non2xx}, socket ${sock ? sock.slice(1).join("/") : "0/0/0/0"} (connect/read/write/timeout)`,
  };
}

function pgbench(db: string, mode: "uniform" | "hot", seconds = SECONDS): Figures {
  const file = join(refDir(), mode === "hot" ? "ref-transfer-hot.sql" : "ref-transfer.sql");
  const out = must([
    "pgbench",
    "-h",
    "127.0.0.1",
    "-U",
    "postgres",
    "-n",
    "-M",
    "prepared",
    `-c${CONNECTIONS}`,
    "-j2",
    `-T${seconds}`,
    "-f",
    file,
    db,
  ]);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  return { tps, avg: Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? Number.NaN), errors: failed };
}

/** CPU seconds (user + system) used so far by these processes; a vanished pid counts 0. */
function cpuSeconds(pids: number[]): number {
  const CLOCK_TICKS_PER_SECOND = 100;
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the ")" of comm: state is #3, utime #14, stime #15
      const rest = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // exited
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** PIDs of the server's database backends (its pool), to charge their CPU to the API run. */
/** The bench's own connection to the API database (figures between runs): not a server backend. */
const STATS_APP = "pbbench-stats";

async function backendPids(admin: postgres.Sql, db: string): Promise<number[]> {
  const rows =
    await admin`SELECT pid FROM pg_stat_activity WHERE datname = ${db} AND backend_type = 'client backend'
                  AND application_name <> ${STATS_APP}`;
  return rows.map((r) => Number((r as { pid: number }).pid));
}

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<void> {
  ensureBinary();
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  const tag = `${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  const apiDb = `pbbench_${tag}`;
  const refDb = `pbref_${tag}`;
  await admin.unsafe(`CREATE DATABASE "${apiDb}"`);
  await admin.unsafe(`CREATE DATABASE "${refDb}"`);
  const apiUrl = `postgres://postgres@127.0.0.1:5432/${apiDb}`;
  let server: ReturnType<typeof Bun.spawn> | undefined;
  const apiStats = postgres(apiUrl, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: STATS_APP },
  });
  const tmp = mkdtempSync(join(tmpdir(), "pbbench-"));
  try {
    console.log(must([BINARY, "migrate", "up"], { DATABASE_URL: apiUrl }).trim());
    must([
      "psql",
      "-q",
      "-h",
      "127.0.0.1",
      "-U",
      "postgres",
      "-d",
      refDb,
      "-f",
      join(refDir(), "ref-schema.sql"),
    ]);
    console.log(`funding ${WALLETS} wallets ...`);
    const ids = await seed(apiUrl);
    const port = await freePort();
    const env = {
      DATABASE_URL: apiUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      JWT_SECRET,
      RATE_LIMIT_ENABLED: "false",
      OUTBOX_RELAY: "off",
      LOG_LEVEL: "warn",
      RECONCILE_INTERVAL_SECONDS: "0",
      DB_POOL_MAX: String(POOL),
      PAYBRIDGE_ENV: "test",
    };
    // As the server reads it (the caller's environment may set POSTING_LANES and the like).
    const config = loadConfig({ ...process.env, ...env }, "serve");
    const token = await mintToken(config, { sub: "bench-admin", role: "admin", ttlSeconds: 6 * 3600 });
    const files = { wallets: join(tmp, "wallets.txt"), token: join(tmp, "token.txt") };
    writeFileSync(files.wallets, `${ids.join("\n")}\n`);
    writeFileSync(files.token, `${token}\n`);

    const start = async (cmd: string[]) => {
      const p = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: "inherit", stderr: "inherit" });
      const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
      while (Date.now() < deadline) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/api/v1/wallets/${ids[0]}/transfer`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${token}`,
              "content-type": "application/json",
              "idempotency-key": crypto.randomUUID(),
            },
            body: JSON.stringify({ destination_wallet_id: ids[1], amount: "0.01", description: "warm-up" }),
          });
          return { p, status: r.status };
        } catch {
          await Bun.sleep(100);
        }
      }
      p.kill();
      throw new Error(`${cmd.join(" ")} did not answer within ${SERVER_READY_TIMEOUT_MS} ms`);
    };
    let started = await start(
      CPU_PROF_DIR === undefined
        ? [BINARY, "serve"]
        : ["bun", "--cpu-prof-md", `--cpu-prof-dir=${CPU_PROF_DIR}`, join(ROOT, "src/main.ts"), "serve"],
    );
    let serverKind =
      CPU_PROF_DIR === undefined ? "dist/paybridge serve" : "bun --cpu-prof-md src/main.ts serve";
    if (started.status === 404) {
      // The money routes are not mounted in this binary yet: same app from source.
      started.p.kill();
      await started.p.exited;
      started = await start(["bun", join(ROOT, "scripts/bench/serve-source.ts")]);
      serverKind = "source (buildApp + money routes; binary lacks them)";
    }
    server = started.p;
    if (started.status !== 201) throw new Error(`warm-up transfer answered ${started.status}`);
    console.log(
      `server: ${serverKind}; ${CONNECTIONS} connections (pool ${POOL}, ` +
        `${Math.min(config.postingLanes, POOL)} posting lanes, batches of up to ${config.postingBatchMax}), ` +
        `${SECONDS}s per run, ${ROUNDS} rounds`,
    );
    console.log(
      `load average at the start: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
    );

    const results: Record<string, Figures[]> = {
      "api uniform": [],
      "pg uniform": [],
      "api hot": [],
      "pg hot": [],
    };
    {
      const warm = (["uniform", "hot"] as const).map((mode) => {
        const a = wrk(port, mode, files, WARMUP);
        const p = pgbench(refDb, mode, WARMUP);
        return `${mode} api ${a.tps.toFixed(0)} / pgbench ${p.tps.toFixed(0)} tps`;
      });
      console.log(`warm-up (${WARMUP}s per mode and side, not counted): ${warm.join("; ")}`);
    }
    {
      // The framework floor: an authenticated no-database route, to tell HTTP stack cost from
      // money-path cost in the server's CPU per transfer.
      const cpu0 = cpuSeconds([server.pid]);
      const out = must([
        "wrk",
        "-t2",
        `-c${CONNECTIONS}`,
        `-d${Math.min(SECONDS, 5)}s`,
        "-H",
        `Authorization: Bearer ${token}`,
        `http://127.0.0.1:${port}/api/v1/currencies`,
      ]);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
      const ms = ((cpuSeconds([server.pid]) - cpu0) * 1000) / (rps * Math.min(SECONDS, 5));
      console.log(
        `floor: GET /api/v1/currencies ${rps.toFixed(0)} req/s, server cpu ${ms.toFixed(2)} ms/request`,
      );
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of ["uniform", "hot"] as const) {
        const pool = await backendPids(admin, apiDb);
        const serverPid = server.pid;
        const cpu0 = { app: cpuSeconds([serverPid]), db: cpuSeconds(pool) };
        const [{ t0 }] = (await admin`SELECT clock_timestamp() AS t0`) as unknown as [{ t0: Date }];
        const a = wrk(port, mode, files);
        const done = a.tps * SECONDS;
        const appMs = ((cpuSeconds([serverPid]) - cpu0.app) * 1000) / done;
        // The pool opens connections lazily: a backend that appeared during the run counts whole.
        const after = new Set([...pool, ...(await backendPids(admin, apiDb))]);
        const dbMs = ((cpuSeconds([...after]) - cpu0.db) * 1000) / done;
        const perCommit = await postingsPerCommit(apiStats, t0);
        results[`api ${mode}`]!.push(a);
        const p = pgbench(refDb, mode);
        results[`pg ${mode}`]!.push(p);
        console.log(
          `round ${round} ${mode.padEnd(7)} api ${a.tps.toFixed(0)} tps (p50 ${a.p50} ms, p99 ${a.p99} ms, errors ${a.errors}${a.errors > 0 ? ` = ${a.errorDetail}` : ""};` +
            ` cpu/transfer: server ${appMs.toFixed(2)} ms, its db backends ${dbMs.toFixed(2)} ms;` +
            ` transfers per commit ${perCommit.toFixed(1)})` +
            ` | pgbench ${p.tps.toFixed(0)} tps (avg ${p.avg} ms)`,
        );
      }
    }
    const row = (label: string, f: Figures[]) => ({
      run: label,
      "transfers/s": Math.round(median(f.map((x) => x.tps))),
      "p50 ms": f[0]?.p50 === undefined ? "-" : median(f.map((x) => x.p50 ?? Number.NaN)).toFixed(2),
      "p99 ms": f[0]?.p99 === undefined ? "-" : median(f.map((x) => x.p99 ?? Number.NaN)).toFixed(2),
      "avg ms": f[0]?.avg === undefined ? "-" : median(f.map((x) => x.avg ?? Number.NaN)).toFixed(2),
      errors: f.reduce((s, x) => s + x.errors, 0),
    });
    console.log("\nmedians:");
    console.table([
      row("API uniform", results["api uniform"]!),
      row("pgbench uniform", results["pg uniform"]!),
      row("API hot", results["api hot"]!),
      row("pgbench hot", results["pg hot"]!),
    ]);
    const ratio = (mode: "uniform" | "hot") =>
      median(results[`api ${mode}`]!.map((x) => x.tps)) / median(results[`pg ${mode}`]!.map((x) => x.tps));
    console.log(
      `load average at the end: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
    );
    {
      const status = readFileSync(`/proc/${server.pid}/status`, "utf8");
      const kib = (field: string) =>
        Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN);
      console.log(
        `server memory: RSS ${(kib("VmRSS") / 1024).toFixed(0)} MiB, peak ${(kib("VmHWM") / 1024).toFixed(0)} MiB` +
          ` (MIMALLOC_PURGE_DELAY=${process.env.MIMALLOC_PURGE_DELAY ?? "unset"})`,
      );
    }
    {
      // HOT updates keep a balance change out of every wallet index (fillfactor, migration 00002).
      const [w] = await apiStats`
        SELECT n_tup_hot_upd::text AS hot, n_tup_upd::text AS upd FROM pg_stat_user_tables WHERE relname = 'wallets'`;
      const { hot, upd } = w as { hot: string; upd: string };
      console.log(`wallet updates that were HOT: ${hot} of ${upd}`);
    }
    console.log(
      `ratio API ÷ pgbench: uniform ${(ratio("uniform") * 100).toFixed(0)}% (goal ≥ 60%), hot ${(ratio("hot") * 100).toFixed(0)}% (goal ≥ 50%)`,
    );
  } finally {
    if (server !== undefined) {
      server.kill("SIGTERM");
      await server.exited;
    }
    await apiStats.end();
    await admin.unsafe(`DROP DATABASE IF EXISTS "${apiDb}" WITH (FORCE)`);
    await admin.unsafe(`DROP DATABASE IF EXISTS "${refDb}" WITH (FORCE)`);
    await admin.end();
  }
}

await main();

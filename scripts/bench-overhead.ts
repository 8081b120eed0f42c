// Overhead of observability (metrics + access log + traceparent) on throughput, measured in
// one run: two servers in this process over the same database, identical except that "on"
// has the observability plugin, the instrumented pool and the production info-level JSON
// logger on stdout (redirect it: the access log of the run), while "off" has none of them
// (LOG_LEVEL=error equivalent: nothing logs on the happy path). Results go to stderr. wrk drives each in
// alternating rounds so drift (other load on the machine) hits both alike.
//
//   bun scripts/bench-overhead.ts > /dev/null          (needs wrk and the local PostgreSQL)
//   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_CONNECTIONS=50 bun scripts/bench-overhead.ts > /dev/null
//
// Routes: GET /api/v1/wallets/:id (authenticated, one database read) and
// GET /api/v1/currencies (no database work).
import { Elysia } from "elysia";
import type { AppDeps } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createSql } from "../src/db/client.ts";
import { migrateUp } from "../src/db/migrator.ts";
import { createAuthenticator, mintToken } from "../src/http/auth.ts";
import { corePlugin } from "../src/http/core.ts";
import { currenciesRoutes } from "../src/modules/currencies/index.ts";
import { walletsRoutes } from "../src/modules/wallets/index.ts";
import { createLogger } from "../src/observability/logger.ts";
import { createMetrics } from "../src/observability/metrics.ts";
import { closeObservability, healthRoutes, observabilityPlugin } from "../src/observability/plugin.ts";
import { createEmptyDatabase } from "../test/helpers/db.ts";

// Many short alternating rounds rather than a few long ones: on a shared host the throughput
// drifts by ±30% over a minute, and alternation is what cancels drift between variants.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const THREADS = 2;
const SECRET = "bench-overhead-secret-0123456789abcdefgh";

/** off: nothing; metrics: plugin + instrumented pool, LOG_LEVEL=warn (no access lines); on: everything. */
type Variant = "on" | "metrics" | "off";
const VARIANTS: readonly Variant[] = ["on", "metrics", "off"];

async function wrk(url: string, token?: string): Promise<number> {
  const args = ["wrk", `-t${THREADS}`, `-c${CONNECTIONS}`, `-d${SECONDS}s`, "--latency"];
  if (token !== undefined) args.push("-H", `Authorization: Bearer ${token}`);
  args.push(url);
  const p = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (non2xx !== null) console.error(`  warning: ${non2xx[1]} non-2xx responses on ${url}`);
  return m === null ? 0 : Number(m[1]);
}

async function main() {
  if (Bun.which("wrk") === null) {
    console.error("wrk is not installed (make tools)");
    process.exit(1);
  }
  const db = await createEmptyDatabase("pbbench");
  const config = loadConfig(
    { DATABASE_URL: db.url, JWT_SECRET: SECRET, RATE_LIMIT_ENABLED: "false", LOG_LEVEL: "info" },
    "serve",
  );
  const { auth } = await createAuthenticator(config);
  const setupSql = createSql(config, { applicationName: "bench-setup", max: 1 });
  await migrateUp(setupSql);
  const [user] = await setupSql<{ id: string }[]>`
    INSERT INTO users (email, full_name, kyc_status) VALUES ('bench@example.com', 'Bench', 'VERIFIED') RETURNING id`;
  const [wallet] = await setupSql<{ id: string }[]>`
    INSERT INTO wallets (user_id, currency, kind) VALUES (${user!.id}, 'USD', 'fiat') RETURNING id`;
  await setupSql.end();
  const token = await mintToken(config, { sub: user!.id, role: "user", ttlSeconds: 3600 });

  const servers: Record<Variant, { port: number; stop: () => Promise<void> }> = {} as never;
  for (const variant of VARIANTS) {
    const on = variant !== "off";
    const metrics = createMetrics();
    const logger = createLogger(
      variant === "on" ? config : { ...config, logLevel: variant === "metrics" ? "warn" : "error" },
    );
    const sql = createSql(config, { applicationName: `bench-${variant}`, ...(on ? { metrics } : {}) });
    const deps: AppDeps = {
      config,
      sql,
      logger,
      metrics,
      auth,
      lifecycle: { draining: false, startedAt: Date.now() },
    };
    let app = new Elysia({ normalize: false }).use(corePlugin({ logger, allowedMethods: () => [] }));
    if (on) app = app.use(observabilityPlugin(deps)).use(healthRoutes(deps)) as unknown as typeof app;
    app = app.use(currenciesRoutes()).use(walletsRoutes(deps)) as unknown as typeof app;
    app.listen({ port: 0, hostname: "127.0.0.1" });
    const port = app.server?.port as number;
    servers[variant] = {
      port,
      stop: async () => {
        await app.stop(true);
        await closeObservability(deps);
        await sql.end({ timeout: 1 });
      },
    };
  }

  const routes = [
    { name: "GET /api/v1/wallets/:id (1 DB read)", path: `/api/v1/wallets/${wallet!.id}`, token },
    { name: "GET /api/v1/currencies (no DB)", path: "/api/v1/currencies", token: undefined },
  ];
  console.error(`wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s, ${ROUNDS} alternating rounds per variant`);
  for (const r of routes) {
    // warm-up (JIT, pool connections)
    for (const v of VARIANTS) await wrk(`http://127.0.0.1:${servers[v].port}${r.path}`, r.token);
    const totals: Record<Variant, number[]> = { on: [], metrics: [], off: [] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const v of i % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
        totals[v].push(await wrk(`http://127.0.0.1:${servers[v].port}${r.path}`, r.token));
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const off = mean(totals.off);
    const pct = (v: number) => (off === 0 ? 0 : ((off - v) / off) * 100).toFixed(1);
    const rounds = (v: Variant) => totals[v].map((x) => x.toFixed(0)).join("/");
    console.error(
      `${r.name}: off ${off.toFixed(0)} req/s; metrics only ${mean(totals.metrics).toFixed(0)} (-${pct(mean(totals.metrics))}%); ` +
        `metrics+logs ${mean(totals.on).toFixed(0)} (-${pct(mean(totals.on))}%)  ` +
        `[rounds off ${rounds("off")}, metrics ${rounds("metrics")}, on ${rounds("on")}]`,
    );
  }
  for (const s of Object.values(servers)) await s.stop();
  await db.drop();
}

await main();
process.exit(0);

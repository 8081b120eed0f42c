// One throw-away environment for a harness run: a private PostgreSQL cluster, the migrated
// schema (by the binary's own `migrate up`), `serve` on a free port, optionally `paybridge
// relay` delivering to an in-process webhook sink, and an admin client. teardown() always.
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { CarefulClient, mintToken } from "./client.ts";
import { PgCluster } from "./cluster.ts";
import { waitFor } from "./net.ts";
import {
  type Binary,
  ManagedProcess,
  privateBinary,
  runOnce,
  type ServeHandle,
  startServe,
} from "./processes.ts";
import { WebhookSink } from "./sink.ts";

export const HARNESS_ADMIN_SUB = "harness-admin";

/** Environments not torn down yet: Ctrl-C or SIGTERM must not leave clusters behind in /tmp. */
const live = new Set<() => Promise<void>>();
let signalsInstalled = false;
function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, async () => {
      process.stderr.write(`\n${sig}: tearing down the harness environment\n`);
      await Promise.allSettled([...live].map((t) => t()));
      process.exit(130);
    });
  }
}

export type HarnessEnv = {
  cluster: PgCluster;
  bin: Binary;
  serve: ServeHandle;
  relay?: ManagedProcess;
  sink?: WebhookSink;
  secret: string;
  admin: CarefulClient;
  sql: postgres.Sql;
  serveEnv: Record<string, string>;
  teardown: () => Promise<void>;
};

export type EnvOptions = {
  relay?: boolean;
  /** extra/overriding env for serve */
  serveEnv?: Record<string, string>;
  log?: (line: string) => void;
};

export async function createEnv(opts: EnvOptions = {}): Promise<HarnessEnv> {
  const log = opts.log ?? (() => {});
  const bin = privateBinary();
  let cluster: PgCluster | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  const teardown = async () => {
    live.delete(teardown);
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep tearing down
      }
    }
    cluster?.destroy();
    bin.cleanup();
  };
  installSignalCleanup();
  live.add(teardown);
  try {
    log("creating a throw-away PostgreSQL cluster");
    cluster = await PgCluster.create();
    const databaseUrl = cluster.url();
    const secret = randomBytes(32).toString("hex");
    runOnce(bin, ["migrate", "up"], { DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" });
    const serveEnv: Record<string, string> = {
      DATABASE_URL: databaseUrl,
      JWT_SECRET: secret,
      PAYBRIDGE_ENV: "test",
      RATE_LIMIT_ENABLED: "false",
      OUTBOX_RELAY: "off",
      LOG_LEVEL: "warn",
      HOLD_SWEEP_SECONDS: "5",
      RECONCILE_INTERVAL_SECONDS: "0",
      SHUTDOWN_TIMEOUT_SECONDS: "10",
      ...opts.serveEnv,
    };
    log(`PostgreSQL on :${cluster.port}; starting serve`);
    const serve = await startServe(bin, serveEnv);
    cleanups.push(() => serve.proc.kill());
    const sql = postgres(databaseUrl, { max: 4, onnotice: () => {}, connect_timeout: 10 });
    cleanups.push(() => sql.end({ timeout: 2 }));
    const admin = new CarefulClient(serve.baseUrl, await mintToken(secret, HARNESS_ADMIN_SUB, "admin"));
    let relay: ManagedProcess | undefined;
    let sink: WebhookSink | undefined;
    if (opts.relay === true) {
      sink = new WebhookSink(randomBytes(24).toString("hex"));
      const hookUrl = sink.start();
      cleanups.push(() => sink?.stop());
      relay = new ManagedProcess("relay", bin, ["relay"], {
        DATABASE_URL: databaseUrl,
        WEBHOOK_URL: hookUrl,
        WEBHOOK_SECRET: sink.secret,
        PAYBRIDGE_ENV: "test",
        LOG_LEVEL: "warn",
        OUTBOX_MAX_ATTEMPTS: "1000",
      });
      await relay.start();
      cleanups.push(() => relay?.kill());
      log(`relay delivering to ${hookUrl}`);
    }
    return { cluster, bin, serve, relay, sink, secret, admin, sql, serveEnv, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** Waits until the relay has published every outbox row (bounded). */
export async function waitOutboxDrained(sql: postgres.Sql, timeoutMs: number): Promise<void> {
  await waitFor(
    "the outbox to drain",
    async () => {
      const [r] = await sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM outbox WHERE status <> 'PUBLISHED'`;
      return r?.n === 0;
    },
    timeoutMs,
    500,
  );
}

// `paybridge serve`: the API (+ probes and /metrics, on MANAGEMENT_PORT when set) and the
// background loops, with the shutdown sequence of SPEC §5.4:
//   signal → /ready 503 at once → SHUTDOWN_DRAIN_SECONDS (the load balancer notices) →
//   listener stops, in-flight requests finish → background loops stop → pools close → exit 0,
//   all within SHUTDOWN_TIMEOUT_SECONDS of the signal, else exit 1.
// Nothing here touches the database before listening: serve starts with the database down
// and /ready reports it until it is back (postgres.js reconnects on the next query).
import { Elysia } from "elysia";
import type { Logger } from "pino";
import { type AppDeps, buildApp } from "../app.ts";
import { type Config, loadConfig } from "../config.ts";
import { createServePools } from "../db/client.ts";
import { createAuthenticator } from "../http/auth.ts";
import { startHoldSweeper } from "../ledger/hold-sweeper.ts";
import { startReconciler } from "../modules/reconciliation/reconciler.ts";
import { type BackgroundTask, background } from "../observability/background.ts";
import { createLogger } from "../observability/logger.ts";
import { createMetrics } from "../observability/metrics.ts";
import { closeObservability, healthRoutes } from "../observability/plugin.ts";
import { startRelay } from "../outbox/relay.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./usage.ts";

/** Pool closing waits at most this long for queries to finish before ending connections. */
export const POOL_END_TIMEOUT_SECONDS = 5;
export const SHUTDOWN_SIGNALS = ["SIGTERM", "SIGINT"] as const;

/**
 * The background loops `serve` runs, started after the listener is up and stopped after it
 * closed. A new loop: a `start…(deps) → { stop() }` function wrapped with `background()`.
 */
export function backgroundTasks(deps: AppDeps): BackgroundTask[] {
  const { config, sql, logger, metrics } = deps;
  const tasks: BackgroundTask[] = [
    background(
      () =>
        startHoldSweeper({
          sql,
          logger,
          metrics,
          sweepSeconds: config.holdSweepSeconds,
          idempotencyTtlHours: config.idempotencyTtlHours,
        }),
      "hold-sweeper",
    ),
  ];
  if (config.outboxRelay)
    tasks.push(background(() => startRelay({ config, sql, logger, metrics }), "outbox-relay"));
  if (config.reconcileIntervalSeconds > 0) {
    tasks.push(
      background(
        () => startReconciler({ sql, logger, metrics, intervalSeconds: config.reconcileIntervalSeconds }),
        "reconciler",
      ),
    );
  }
  return tasks;
}

type Tls = { cert: string; key: string };

/** Reads TLS_CERT_FILE / TLS_KEY_FILE; a clear one-line reason when they are unusable. */
async function readTls(config: Config): Promise<Tls | undefined | string> {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  const read = async (name: string, path: string, marker: RegExp): Promise<string> => {
    let text: string;
    try {
      text = await Bun.file(path).text();
    } catch {
      throw new Error(`${name}: cannot read ${path}`);
    }
    if (!marker.test(text)) throw new Error(`${name}: ${path} is not a PEM file`);
    return text;
  };
  try {
    return {
      cert: await read("TLS_CERT_FILE", config.tlsCertFile, /-----BEGIN CERTIFICATE-----/),
      key: await read("TLS_KEY_FILE", config.tlsKeyFile, /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/),
    };
  } catch (err) {
    return (err as Error).message;
  }
}

function listenError(err: unknown, host: string, port: number): string {
  const code = (err as { code?: string }).code;
  if (code === "EADDRINUSE" || /in use/i.test(String((err as Error).message))) {
    return `cannot listen on ${host}:${port}: the port is already in use`;
  }
  if (code === "EACCES") return `cannot listen on ${host}:${port}: permission denied`;
  return `cannot listen on ${host}:${port}: ${(err as Error).message}`;
}

async function flush(logger: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    try {
      logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}

export async function serveCommand(args: string[], env: Record<string, string | undefined>): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
  const config = loadConfig(env, "serve");
  const tls = await readTls(config);
  if (typeof tls === "string") {
    process.stderr.write(`paybridge serve: ${tls}\n`);
    return EXIT_FAILURE;
  }
  const logger = createLogger(config);
  const metrics = createMetrics();
  const pools = createServePools(config, { applicationName: "paybridge-serve", metrics });
  const { auth, devAdminToken } = await createAuthenticator(config);
  const lifecycle = { draining: false, startedAt: Date.now() };
  const deps: AppDeps = {
    config,
    sql: pools.sql,
    logger,
    lifecycle,
    auth,
    metrics,
    postings: pools.postings,
  };

  if (config.env !== "production") {
    logger.warn(
      { env: config.env },
      `running with PAYBRIDGE_ENV=${config.env}: development defaults are active`,
    );
  }
  if (devAdminToken !== undefined) {
    // Outside the JSON log on purpose: the log pipeline must never carry a token.
    process.stderr.write(
      "\nWARNING: no JWT_SECRET or JWT_PUBLIC_KEY set: a throw-away secret was generated.\n" +
        "Tokens stop working when this process exits. Development admin token (12 h):\n\n" +
        `${devAdminToken}\n\n`,
    );
  }

  const app = buildApp(deps);
  const management =
    config.managementPort === undefined
      ? undefined
      : new Elysia().use(healthRoutes(deps, { management: true }));
  const closeAll = async () => {
    await closeObservability(deps);
    await pools.end(POOL_END_TIMEOUT_SECONDS);
  };

  try {
    app.listen({ port: config.port, hostname: config.host, ...(tls === undefined ? {} : { tls }) });
  } catch (err) {
    process.stderr.write(`paybridge serve: ${listenError(err, config.host, config.port)}\n`);
    await closeAll();
    return EXIT_FAILURE;
  }
  if (management !== undefined && config.managementPort !== undefined) {
    try {
      management.listen({ port: config.managementPort, hostname: config.host });
    } catch (err) {
      process.stderr.write(
        `paybridge serve: management ${listenError(err, config.host, config.managementPort)}\n`,
      );
      await app.stop(true);
      await closeAll();
      return EXIT_FAILURE;
    }
  }
  logger.info(
    {
      port: app.server?.port,
      host: config.host,
      management_port: management?.server?.port,
      tls: tls !== undefined,
    },
    "listening",
  );

  const tasks = backgroundTasks(deps);
  for (const t of tasks) {
    try {
      await t.start();
    } catch (err) {
      logger.error({ err, task: t.name }, "background task failed to start");
    }
  }

  return await new Promise<number>((resolve) => {
    let shuttingDown = false;
    const shutdown = async (signal: string) => {
      if (shuttingDown) {
        logger.warn({ signal }, "shutdown already in progress");
        return;
      }
      shuttingDown = true;
      const deadline = setTimeout(() => {
        logger.error({ timeout_seconds: config.shutdownTimeoutSeconds }, "shutdown timed out");
        void flush(logger).then(() => resolve(EXIT_FAILURE));
      }, config.shutdownTimeoutSeconds * 1000);
      lifecycle.draining = true;
      logger.info(
        { signal, drain_seconds: config.shutdownDrainSeconds },
        "shutting down: readiness now fails",
      );
      try {
        if (config.shutdownDrainSeconds > 0) await Bun.sleep(config.shutdownDrainSeconds * 1000);
        // No new connections; resolves once in-flight requests have been answered.
        await Promise.all([app.stop(), management?.stop()]);
        logger.info("listener stopped; in-flight requests finished");
        await Promise.all(
          tasks.map(async (t) => {
            try {
              await t.stop();
            } catch (err) {
              logger.error({ err, task: t.name }, "background task failed to stop");
            }
          }),
        );
        await closeAll();
        clearTimeout(deadline);
        logger.info("shutdown complete");
        await flush(logger);
        resolve(EXIT_OK);
      } catch (err) {
        clearTimeout(deadline);
        logger.error({ err }, "shutdown failed");
        await flush(logger);
        resolve(EXIT_FAILURE);
      }
    };
    for (const s of SHUTDOWN_SIGNALS) process.on(s, () => void shutdown(s));
  });
}

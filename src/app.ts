// Builds the Elysia app from its dependencies. Used by `serve` and by the in-process tests
// (app.handle(new Request("http://localhost/..."))). No I/O happens here.
//
// Order matters: the core plugin comes first so its onRequest (ids) and onError
// (problem+json) cover every route and every failure, including 404/405 and body parsing.
import { type AnyElysia, Elysia } from "elysia";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import type { PostingPool, Sql } from "./db/client.ts";
import type { Authenticator } from "./http/auth.ts";
import { corePlugin, methodIndex } from "./http/core.ts";
import { protectionPlugin } from "./http/protection.ts";
import { currenciesRoutes } from "./modules/currencies/index.ts";
import { docsRoutes } from "./modules/docs/index.ts";
import { eventsRoutes } from "./modules/events/index.ts";
import { reconciliationRoutes } from "./modules/reconciliation/index.ts";
import { transactionRoutes } from "./modules/transactions/index.ts";
import { usersRoutes } from "./modules/users/index.ts";
import { walletsRoutes } from "./modules/wallets/index.ts";
import type { Metrics } from "./observability/metrics.ts";
import { healthRoutes, observabilityPlugin } from "./observability/plugin.ts";

export type AppDeps = {
  config: Config;
  sql: Sql;
  logger: Logger;
  /** Flipped by the shutdown sequence: /ready answers 503 while draining. */
  lifecycle: { draining: boolean; startedAt: number };
  auth: Authenticator;
  metrics: Metrics;
  /**
   * serve's posting lanes on connections of their own (src/db/client.ts createServePools);
   * without them the batcher's lanes share `sql`.
   */
  postings?: PostingPool;
};

export function buildApp(deps: AppDeps) {
  let built: AnyElysia | undefined;
  const app = new Elysia({
    // Unknown body fields must be refused (400), not silently stripped.
    normalize: false,
  })
    // The 405 lookup reads the final route table lazily, on the first unmatched request.
    .use(corePlugin({ logger: deps.logger, allowedMethods: methodIndex(() => built?.routes ?? []) }))
    // observability plugin (metrics, access log, tracing, /live /health /ready /health/detailed /metrics)
    .use(observabilityPlugin(deps))
    .use(healthRoutes(deps))
    // After core (a 429 carries the ids and is rendered by the core error mapper), before routes.
    .use(protectionPlugin(deps))
    .use(currenciesRoutes())
    .use(usersRoutes(deps))
    .use(walletsRoutes(deps))
    .use(transactionRoutes(deps))
    .use(reconciliationRoutes(deps))
    .use(eventsRoutes(deps))
    .use(docsRoutes(() => built));
  built = app;
  return app;
}

export type App = ReturnType<typeof buildApp>;

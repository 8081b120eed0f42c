// Builds the Elysia app from its dependencies. Used by `serve` and by the in-process tests
// (app.handle(new Request("http://localhost/..."))). No I/O happens here.
import { Elysia } from "elysia";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import type { Sql } from "./db/client.ts";
import type { Authenticator } from "./http/auth.ts";
import type { Metrics } from "./observability/metrics.ts";

export type AppDeps = {
  config: Config;
  sql: Sql;
  logger: Logger;
  /** Flipped by the shutdown sequence: /ready answers 503 while draining. */
  lifecycle: { draining: boolean; startedAt: number };
  auth: Authenticator;
  metrics: Metrics;
};

export function buildApp(deps: AppDeps) {
  return new Elysia().get("/live", () => ({ status: "pass" }));
}

export type App = ReturnType<typeof buildApp>;

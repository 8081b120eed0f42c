// A tiny app around the protection plugin: the plugin's hooks, a problem+json error mapper
// shaped like the core one (AppError → status, headers, body), and a few routes standing for
// probes, API and money routes. The token check is a stand-in Authenticator: "Bearer
// good:<id>" is a valid token for user <id>, anything else is refused like a bad JWT.
import { Elysia } from "elysia";
import pino from "pino";
import postgres from "postgres";
import type { AppDeps } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import type { Sql } from "../../src/db/client.ts";
import type { Authenticator } from "../../src/http/auth.ts";
import { AppError, PROBLEM_CONTENT_TYPE, toProblem, UnauthorizedError } from "../../src/http/errors.ts";
import { type ProtectionOptions, protectionPlugin } from "../../src/http/protection.ts";
import { createMetrics } from "../../src/observability/metrics.ts";

export const TEST_JWT_SECRET = "protection-tests-secret-0123456789abcdef";

export const fakeAuth: Authenticator = {
  async verify(authorization) {
    const m = /^Bearer good:(.+)$/.exec(authorization ?? "");
    if (!m) throw new UnauthorizedError();
    return { id: m[1]!, role: "user" };
  },
};

export type LogLine = { level: number; msg: string; [k: string]: unknown };

export function testDeps(env: Record<string, string>) {
  const config = loadConfig({ JWT_SECRET: TEST_JWT_SECRET, ...env }, "serve");
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) },
  );
  // Never queried by the plugin: postgres.js connects lazily, so this opens nothing.
  const sql = postgres("postgres://127.0.0.1:1/unused", { max: 1 }) as unknown as Sql;
  const deps: AppDeps = {
    config,
    sql,
    logger,
    lifecycle: { draining: false, startedAt: Date.now() },
    auth: fakeAuth,
    metrics: createMetrics(),
  };
  return { deps, lines };
}

export function tinyApp(deps: AppDeps, opts?: ProtectionOptions) {
  return new Elysia()
    .onError(({ error, request }) => {
      const instance = new URL(request.url).pathname;
      if (error instanceof AppError) {
        return new Response(JSON.stringify(toProblem(error, instance, "req-test")), {
          status: error.status,
          headers: { "content-type": PROBLEM_CONTENT_TYPE, ...error.headers },
        });
      }
      const code = (error as { code?: unknown }).code;
      const status = code === "NOT_FOUND" ? 404 : 500;
      return new Response(JSON.stringify({ status, code }), {
        status,
        headers: { "content-type": PROBLEM_CONTENT_TYPE },
      });
    })
    .use(protectionPlugin(deps, opts))
    .get("/live", () => ({ status: "pass" }))
    .get("/health", () => ({ status: "pass" }))
    .get("/ready", () => ({ status: "pass" }))
    .get("/health/detailed", () => ({ status: "pass" }))
    .get("/metrics", () => "# metrics\n")
    .get("/api/v1/currencies", () => ({ data: [] }))
    .get("/api/v1/whoami", ({ request }) => ({ auth: request.headers.get("authorization") }))
    .post("/api/v1/wallets/:id/credit", ({ params }) => ({ wallet: params.id }))
    .post("/api/v1/transactions/:id/cancel", ({ params }) => ({ transaction: params.id }));
}

export const get = (app: { handle(r: Request): Promise<Response> }, path: string, init?: RequestInit) =>
  app.handle(new Request(`http://localhost${path}`, init));

export async function counterValue(deps: AppDeps, name: string, labels: Record<string, string>) {
  const metric = await deps.metrics.registry.getSingleMetric(name)?.get();
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

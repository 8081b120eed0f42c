// Fallback server for the benchmark while the money routes are not yet mounted in buildApp:
// the same app as `paybridge serve` (buildApp) plus the money plugins, run from source.
// Configuration comes from the environment exactly as for `serve`.
import pino from "pino";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createSql } from "../../src/db/client.ts";
import { createAuthenticator } from "../../src/http/auth.ts";
import { reconciliationRoutes } from "../../src/modules/reconciliation/index.ts";
import { transactionRoutes } from "../../src/modules/transactions/index.ts";
import { createMetrics } from "../../src/observability/metrics.ts";

const config = loadConfig(process.env, "serve");
const sql = createSql(config, { applicationName: "paybridge-bench" });
const { auth } = await createAuthenticator(config);
const deps = {
  config,
  sql,
  logger: pino({ level: config.logLevel }),
  lifecycle: { draining: false, startedAt: Date.now() },
  auth,
  metrics: createMetrics(),
};
const app = buildApp(deps).use(transactionRoutes(deps)).use(reconciliationRoutes(deps));
app.listen({ port: config.port, hostname: config.host });
process.on("SIGTERM", async () => {
  await app.stop();
  await sql.end({ timeout: 2 });
  process.exit(0);
});

import pino from "pino";
import { buildApp } from "../app.ts";
import { loadConfig } from "../config.ts";
import { createSql } from "../db/client.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./usage.ts";

export async function serveCommand(args: string[], env: Record<string, string | undefined>): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
  const config = loadConfig(env, "serve");
  const logger = pino({ level: config.logLevel });
  const sql = createSql(config, { applicationName: "paybridge-serve" });
  const lifecycle = { draining: false, startedAt: Date.now() };
  const app = buildApp({ config, sql, logger, lifecycle });
  try {
    app.listen({ port: config.port, hostname: config.host });
  } catch (err) {
    process.stderr.write(`paybridge serve: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`);
    await sql.end({ timeout: 1 });
    return EXIT_FAILURE;
  }
  logger.info({ port: app.server?.port }, "listening");
  return await new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      logger.info({ signal }, "shutting down");
      lifecycle.draining = true;
      await app.stop();
      await sql.end({ timeout: 5 });
      resolve(EXIT_OK);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
}

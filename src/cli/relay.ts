// `paybridge relay`: the outbox relay alone (SPEC §6), until SIGTERM/SIGINT; it finishes
// its current batch, closes the pool and exits 0 (1 when that takes longer than
// SHUTDOWN_TIMEOUT_SECONDS).
// `paybridge relay requeue --all | ID...`: puts parked (FAILED) events back to pending.
import pino from "pino";
import { loadConfig } from "../config.ts";
import { createSql } from "../db/client.ts";
import { createMetrics } from "../observability/metrics.ts";
import { type RelayTuning, startRelay } from "../outbox/relay.ts";
import { REQUEUE_MAX_IDS, requeueFailed } from "../outbox/store.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./usage.ts";

/** Connections: one batch transaction, purge, the health query, plus LISTEN's own. */
const RELAY_POOL_MAX = 4;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const RELAY_USAGE = `Usage:
  paybridge relay [--nats-stream NAME] [--nats-subject-prefix PREFIX]
                                   deliver outbox events to NATS_URL / WEBHOOK_URL until SIGTERM
  paybridge relay requeue --all | ID...
                                   put parked (FAILED) events back to pending
The stream defaults to PAYBRIDGE with subjects paybridge.events.>; the flags exist for
isolated environments (tests, several installations sharing one NATS account).
`;

export async function relayCommand(args: string[], env: Record<string, string | undefined>): Promise<number> {
  if (args[0] === "help" || args[0] === "--help" || args[0] === "-h") {
    process.stdout.write(RELAY_USAGE);
    return EXIT_OK;
  }
  if (args[0] === "requeue") return await requeue(args.slice(1), env);
  return await run(parseRunFlags(args), env);
}

function parseRunFlags(args: string[]): RelayTuning {
  const tuning: RelayTuning = {};
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = args[i + 1];
    const needValue = () => {
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${flag} needs a value`);
      i++;
      return value;
    };
    if (flag === "--nats-stream") {
      const v = needValue();
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(v))
        throw new UsageError("--nats-stream: letters, digits, _ and - only");
      tuning.natsStreamName = v;
    } else if (flag === "--nats-subject-prefix") {
      const v = needValue();
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(v))
        throw new UsageError("--nats-subject-prefix: dot-separated tokens");
      tuning.natsSubjectPrefix = v;
    } else {
      throw new UsageError(`unexpected argument "${flag}"\n\n${RELAY_USAGE}`);
    }
  }
  return tuning;
}

async function run(tuning: RelayTuning, env: Record<string, string | undefined>): Promise<number> {
  const config = loadConfig(env, "relay");
  const logger = pino({ level: config.logLevel, base: { service: "paybridge-relay" } });
  const sql = createSql(config, { applicationName: "paybridge-relay", max: RELAY_POOL_MAX });
  const relay = startRelay({ config, sql, logger, metrics: createMetrics(), tuning });
  logger.info({ targets: relay.state().targets }, "relay started");
  return await new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      logger.info({ signal }, "relay stopping after its current batch");
      const timeout = setTimeout(() => {
        logger.error("relay did not stop within SHUTDOWN_TIMEOUT_SECONDS");
        resolve(EXIT_FAILURE);
      }, config.shutdownTimeoutSeconds * 1000);
      await relay.stop();
      await sql.end({ timeout: 5 });
      clearTimeout(timeout);
      logger.info({ delivered: relay.state().delivered }, "relay stopped");
      resolve(EXIT_OK);
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
}

async function requeue(args: string[], env: Record<string, string | undefined>): Promise<number> {
  const all = args.includes("--all");
  const ids = args.filter((a) => a !== "--all");
  if (all === ids.length > 0) throw new UsageError("requeue needs --all or one or more event ids (not both)");
  for (const id of ids) if (!UUID.test(id)) throw new UsageError(`"${id}" is not an event id (uuid)`);
  if (ids.length > REQUEUE_MAX_IDS) throw new UsageError(`at most ${REQUEUE_MAX_IDS} ids at once`);
  const config = loadConfig(env, "relay");
  const sql = createSql(config, { applicationName: "paybridge-relay-requeue", max: 1 });
  try {
    const done = await requeueFailed(sql, all ? undefined : ids);
    process.stdout.write(`requeued ${done.length} event(s)\n`);
    if (!all && done.length < ids.length) {
      process.stderr.write(`${ids.length - done.length} id(s) were not FAILED events and were left alone\n`);
    }
    return EXIT_OK;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

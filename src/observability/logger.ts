// The process logger: pino writing one JSON object per line to stdout. Every line carries the
// ids of the request being served (read from `requestContext`, AsyncLocalStorage), so a
// service several calls deep logs with its request's ids without being handed a context.
// LOG_FORMAT=pretty formats in-process with pino-pretty: pino transports run in worker
// threads, which do not work inside the compiled binary.
import pino, { type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";
import type { Config } from "../config.ts";
import { requestContext } from "../context.ts";

/** Keys whose values never reach a log line (at the top level or inside REDACT_CONTAINERS). */
export const REDACTED_KEYS = [
  "authorization",
  "Authorization",
  "cookie",
  "Cookie",
  "set-cookie",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "devAdminToken",
  "metricsToken",
  "password",
  "secret",
  "jwtSecret",
  "jwtPrivateKey",
  "webhookSecret",
  "apiKey",
  "api_key",
  "dsn",
  "databaseUrl",
  "database_url",
  "DATABASE_URL",
  "connectionString",
  "query_string",
  "querystring",
] as const;
/**
 * Objects in which those keys are redacted too. Explicit paths, not wildcards: pino's
 * wildcard redaction walks every key of every line and cost ~0.3 ms per line here (a 10×
 * throughput loss on a trivial route); explicit paths cost next to nothing.
 */
export const REDACT_CONTAINERS = [
  "headers",
  "req.headers",
  "request.headers",
  "config",
  "query",
  "body",
  "options",
] as const;
export const REDACTED = "[REDACTED]";
/** Nested errors are followed this deep through `cause`. */
export const ERROR_CAUSE_DEPTH = 5;

/** pino redaction paths: every REDACTED_KEY at the top level and in every container. */
export function redactPaths(): string[] {
  const paths: string[] = [];
  for (const k of REDACTED_KEYS) {
    const plain = /^[A-Za-z_$][\w$]*$/.test(k);
    paths.push(plain ? k : `["${k}"]`);
    for (const c of REDACT_CONTAINERS) paths.push(plain ? `${c}.${k}` : `${c}["${k}"]`);
  }
  return paths;
}

export type SerializedError = {
  type: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: SerializedError | string;
};

/** An error with its `cause` chain (bounded), without driver objects or circular references. */
export function serializeError(err: unknown, depth = 0): SerializedError | string {
  if (!(err instanceof Error)) return typeof err === "string" ? err : String(err);
  const out: SerializedError = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") out.code = String(code);
  if (err.stack !== undefined) out.stack = err.stack;
  if (err.cause !== undefined && depth < ERROR_CAUSE_DEPTH) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/** The request ids on every line, in the log's snake_case; nothing outside a request. */
function idsMixin(): Record<string, string> {
  const ids = requestContext.getStore();
  if (ids === undefined) return {};
  const out: Record<string, string> = {
    request_id: ids.requestId,
    correlation_id: ids.correlationId,
    trace_id: ids.traceId,
    span_id: ids.spanId,
  };
  if (ids.userId !== undefined) out.user_id = ids.userId;
  return out;
}

/** Lines are written in batches of about this many bytes under load... */
export const LOG_BUFFER_BYTES = 4096;
/** ...and at most this late when traffic is low. */
export const LOG_FLUSH_INTERVAL_MS = 250;

/**
 * stdout through sonic-boom with a small buffer: one write(2) per line cost a visible share
 * of throughput on cheap routes. pino flushes it synchronously at exit; serve also flushes
 * on shutdown.
 */
function bufferedStdout(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => {
    try {
      stream.flush();
    } catch {
      // not ready yet or already closed: the next tick or exit flushes
    }
  }, LOG_FLUSH_INTERVAL_MS).unref();
  return stream;
}

export type LoggerOptions = {
  /** Where lines go (tests capture them); default stdout (or pino-pretty for LOG_FORMAT=pretty). */
  destination?: DestinationStream;
};

export function createLogger(
  config: Pick<Config, "logLevel" | "logFormat">,
  opts: LoggerOptions = {},
): Logger {
  const destination =
    opts.destination ??
    (config.logFormat === "pretty"
      ? pretty({ sync: true, translateTime: "SYS:standard", ignore: "pid,hostname" })
      : bufferedStdout());
  return pino(
    {
      level: config.logLevel,
      base: { service: "paybridge" },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: "msg",
      formatters: { level: (label) => ({ level: label }) },
      mixin: idsMixin,
      redact: { paths: redactPaths(), censor: REDACTED },
      serializers: { err: serializeError, error: serializeError },
      hooks: {
        // SPEC §5.3: `msg` is always present, also for `log.info({ ... })`.
        logMethod(args, method) {
          if (args.length === 1 && typeof args[0] === "object" && args[0] !== null) {
            const first = args[0] as { err?: unknown };
            const msg =
              first instanceof Error
                ? first.message
                : first.err instanceof Error
                  ? first.err.message
                  : "event";
            return method.apply(this, [args[0], msg] as never);
          }
          return method.apply(this, args);
        },
      },
    },
    destination,
  );
}

// The process logger: pino writing one JSON object per line to stdout. Every line carries the
// ids of the request being served (read from `requestContext`, AsyncLocalStorage), so a
// service several calls deep logs with its request's ids without being handed a context.
// LOG_FORMAT=pretty formats in-process with pino-pretty: pino transports run in worker
// threads, which do not work inside the compiled binary.
import diagnosticsChannel from "node:diagnostics_channel";
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

/** Lines are written in batches of about this many characters under load... */
export const LOG_BATCH_CHARS = 16_384;
/** ...and at most this late when traffic is low. */
export const LOG_FLUSH_INTERVAL_MS = 250;

/**
 * stdout in batches: lines are collected in an array and handed to a synchronous sonic-boom
 * (EAGAIN retries, EPIPE handling) as one buffer, one write(2) per batch. The asynchronous
 * sonic-boom with `minLength` used before cost ~18 us more CPU per request under load
 * (measured): each Bun fs.write is a thread-pool round trip (~50 us), and while one is in
 * flight sonic-boom appends every line to a growing string and re-measures all of it
 * (Buffer.byteLength) per line.
 * Synchronous, like pino's default destination and Node's stdout on Linux pipes: a reader
 * that stops reading stalls the process instead of growing an unbounded buffer. Pending lines
 * are written by the timer, by `flush` (serve's shutdown) and at exit.
 */
function bufferedStdout(): DestinationStream & { flush(cb?: (err?: Error) => void): void } {
  // Buffer mode: the batch is encoded once here; in string mode sonic-boom measures it,
  // encodes it for write(2) and encodes it again to account for what was written.
  const out = pino.destination({ dest: 1, sync: true, contentMode: "buffer" });
  let lines: string[] = [];
  let chars = 0;
  const drain = () => {
    if (lines.length === 0) return;
    const batch = Buffer.from(lines.join(""));
    lines = [];
    chars = 0;
    out.write(batch as unknown as string);
  };
  setInterval(drain, LOG_FLUSH_INTERVAL_MS).unref();
  process.on("exit", drain);
  return {
    write(line: string) {
      lines.push(line);
      chars += line.length;
      if (chars >= LOG_BATCH_CHARS) drain();
    },
    flush(cb) {
      drain();
      cb?.();
    },
  };
}

/**
 * `"time"` as pino's isoTime writes it, rendered once per millisecond: pino's own builds a
 * Date and an ISO string for every line, and under load several lines share a millisecond.
 */
function isoTimeOncePerMs(): () => string {
  let lastMs = -1;
  let rendered = "";
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      rendered = `,"time":"${new Date(now).toISOString()}"`;
    }
    return rendered;
  };
}

export type LoggerOptions = {
  /** Where lines go (tests capture them); default stdout (or pino-pretty for LOG_FORMAT=pretty). */
  destination?: DestinationStream;
};

/**
 * pino 10 serialises every line through `tracingChannel("pino_asJson").traceSync(...)` unless
 * the channel's `hasSubscribers` is false. Bun's TracingChannel has no such getter
 * (undefined), so every line paid for runStores/traceSync with nobody listening (~5 us per
 * line in a CPU profile under load). Node's definition of the getter, only where the runtime
 * lacks it: subscribers, when there are any, are still called.
 */
function polyfillTracingChannelHasSubscribers(): void {
  const proto = Object.getPrototypeOf(diagnosticsChannel.tracingChannel("paybridge")) as object;
  if ("hasSubscribers" in proto) return;
  Object.defineProperty(proto, "hasSubscribers", {
    configurable: true,
    get(this: Record<"start" | "end" | "asyncStart" | "asyncEnd" | "error", { hasSubscribers: boolean }>) {
      return (
        this.start.hasSubscribers ||
        this.end.hasSubscribers ||
        this.asyncStart.hasSubscribers ||
        this.asyncEnd.hasSubscribers ||
        this.error.hasSubscribers
      );
    },
  });
}

export function createLogger(
  config: Pick<Config, "logLevel" | "logFormat">,
  opts: LoggerOptions = {},
): Logger {
  polyfillTracingChannelHasSubscribers();
  const destination =
    opts.destination ??
    (config.logFormat === "pretty"
      ? pretty({ sync: true, translateTime: "SYS:standard", ignore: "pid,hostname" })
      : bufferedStdout());
  return pino(
    {
      level: config.logLevel,
      base: { service: "paybridge" },
      timestamp: isoTimeOncePerMs(),
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

// A minimal OTLP/HTTP JSON trace exporter (no SDK dependency): request and database spans
// are queued, sent in batches to `${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`, and dropped —
// never waited for — when the collector is slow or down. Tracing must not cost the API its
// availability: the queue is bounded and export runs off the request path.
import type { Logger } from "pino";

export type SpanKind = "internal" | "server" | "client" | "producer" | "consumer";
const KIND_CODE: Record<SpanKind, number> = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

export type Span = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  /** Epoch milliseconds (fractions allowed). */
  startMs: number;
  endMs: number;
  attributes?: Record<string, string | number | boolean>;
  error?: boolean;
};

/** Spans per POST. */
export const OTLP_BATCH_SIZE = 256;
/** Queued spans beyond this are dropped (counted in `dropped`). */
export const OTLP_MAX_QUEUE = 4096;
/** A partial batch waits at most this long. */
export const OTLP_FLUSH_INTERVAL_MS = 2_000;
/** One export request may take this long. */
export const OTLP_EXPORT_TIMEOUT_MS = 5_000;

/** The traces URL for an OTLP/HTTP base endpoint (the SDKs' convention). */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, "");
  return base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
}

type AnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean };

function anyValue(v: string | number | boolean): AnyValue {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

function attributes(a: Record<string, string | number | boolean> | undefined) {
  return Object.entries(a ?? {}).map(([key, value]) => ({ key, value: anyValue(value) }));
}

/** Epoch ms → nanoseconds as the decimal string OTLP/JSON expects (exact for µs resolution). */
export function unixNano(ms: number): string {
  const micros = BigInt(Math.round(ms * 1000));
  return (micros * 1000n).toString();
}

export function otlpPayload(spans: readonly Span[], resource: Record<string, string>) {
  return {
    resourceSpans: [
      {
        resource: { attributes: attributes(resource) },
        scopeSpans: [
          {
            scope: { name: "paybridge" },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId === undefined ? {} : { parentSpanId: s.parentSpanId }),
              name: s.name,
              kind: KIND_CODE[s.kind],
              startTimeUnixNano: unixNano(s.startMs),
              endTimeUnixNano: unixNano(s.endMs),
              attributes: attributes(s.attributes),
              // STATUS_CODE_ERROR = 2, UNSET = 0
              status: s.error === true ? { code: 2 } : { code: 0 },
            })),
          },
        ],
      },
    ],
  };
}

export type SpanExporter = {
  record(span: Span): void;
  /** Sends everything queued now. */
  flush(): Promise<void>;
  /** Flushes and stops the timer. */
  shutdown(): Promise<void>;
  readonly dropped: number;
};

export function createSpanExporter(opts: {
  endpoint: string;
  resource: Record<string, string>;
  logger: Logger;
}): SpanExporter {
  const url = tracesUrl(opts.endpoint);
  let queue: Span[] = [];
  let dropped = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let lastWarnAt = 0;
  const WARN_EVERY_MS = 60_000;

  const send = async (batch: Span[]) => {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(otlpPayload(batch, opts.resource)),
        signal: AbortSignal.timeout(OTLP_EXPORT_TIMEOUT_MS),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new Error(`collector answered ${res.status}`);
    } catch (err) {
      dropped += batch.length;
      // Say so, but not once per batch: a down collector must not flood the log.
      if (Date.now() - lastWarnAt > WARN_EVERY_MS) {
        lastWarnAt = Date.now();
        opts.logger.warn(
          { spans: batch.length, reason: (err as Error).name },
          "trace export failed; spans dropped",
        );
      }
    }
  };

  const flush = (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, OTLP_BATCH_SIZE);
      queue = queue.slice(OTLP_BATCH_SIZE);
      // one request at a time, in order
      inFlight = inFlight.then(() => send(batch));
    }
    return inFlight;
  };

  const timer = setInterval(() => void flush(), OTLP_FLUSH_INTERVAL_MS);
  timer.unref();

  return {
    record(span) {
      if (queue.length >= OTLP_MAX_QUEUE) {
        dropped++;
        return;
      }
      queue.push(span);
      if (queue.length >= OTLP_BATCH_SIZE) void flush();
    },
    flush,
    async shutdown() {
      clearInterval(timer);
      await flush();
    },
    get dropped() {
      return dropped;
    },
  };
}

// W3C Trace Context (https://www.w3.org/TR/trace-context/) ids and the `traceparent` header.
// Parsing is strict: anything malformed is ignored and a fresh trace starts, so a garbage
// header never reaches a log line or a response.

export type TraceContext = { traceId: string; parentSpanId: string; sampled: boolean };

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);
/** A header longer than this is not a traceparent we would accept (version 00 is 55 chars). */
export const TRACEPARENT_MAX_LENGTH = 512;
const FLAG_SAMPLED = 0x01;

/** Parses a `traceparent` header; null for anything that is not a valid one. */
export function parseTraceparent(header: string | null | undefined): TraceContext | null {
  if (header === null || header === undefined || header.length > TRACEPARENT_MAX_LENGTH) return null;
  const m = TRACEPARENT.exec(header.trim());
  if (m === null) return null;
  const [, version, traceId, parentSpanId, flags, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  // Version ff is forbidden; version 00 has exactly four fields. Future versions may append
  // fields after a dash, which we ignore (spec: parse the first four).
  if (version === "ff") return null;
  if (version === "00" && rest !== undefined) return null;
  if (traceId === ZERO_TRACE_ID || parentSpanId === ZERO_SPAN_ID) return null;
  return { traceId, parentSpanId, sampled: (Number.parseInt(flags, 16) & FLAG_SAMPLED) !== 0 };
}

/** "00".."ff" by byte value: one table lookup per byte instead of toString + padStart. */
const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const TRACE_ID_BYTES = 16;
const SPAN_ID_BYTES = 8;

type WithToHex = Uint8Array & { toHex(): string };
/** Native Uint8Array.prototype.toHex (TC39, in Bun) is ~4x faster than the table; the table is the fallback. */
const HAS_NATIVE_HEX = typeof (Uint8Array.prototype as Partial<WithToHex>).toHex === "function";

function hexOf(bytes: Uint8Array): string {
  if (HAS_NATIVE_HEX) return (bytes as WithToHex).toHex();
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX_BYTE[bytes[i]!];
  return s;
}

function randomHex(bytes: number): string {
  return hexOf(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** 16 random bytes as 32 lower-case hex digits, never all zero. */
export function newTraceId(): string {
  const id = randomHex(TRACE_ID_BYTES);
  return id === ZERO_TRACE_ID ? newTraceId() : id;
}

/** 8 random bytes as 16 lower-case hex digits, never all zero. */
export function newSpanId(): string {
  const id = randomHex(SPAN_ID_BYTES);
  return id === ZERO_SPAN_ID ? newSpanId() : id;
}

/** A new trace id and span id from one getRandomValues call (the per-request hot path). */
function newTraceAndSpan(): { traceId: string; spanId: string } {
  // One hex string sliced in two: subarray views cost more than the formatting itself.
  const hex = hexOf(crypto.getRandomValues(new Uint8Array(TRACE_ID_BYTES + SPAN_ID_BYTES)));
  const traceId = hex.slice(0, 2 * TRACE_ID_BYTES);
  const spanId = hex.slice(2 * TRACE_ID_BYTES);
  return {
    traceId: traceId === ZERO_TRACE_ID ? newTraceId() : traceId,
    spanId: spanId === ZERO_SPAN_ID ? newSpanId() : spanId,
  };
}

/** The `traceparent` value naming `spanId` as the parent for the next hop. */
export function formatTraceparent(traceId: string, spanId: string, sampled = true): string {
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}

/**
 * The trace ids of one incoming request: the caller's trace continues when its header is
 * valid (our span is a child of theirs), else a new trace starts.
 */
export function traceForRequest(header: string | null | undefined): {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  sampled: boolean;
} {
  const parent = parseTraceparent(header);
  if (parent === null) {
    const { traceId, spanId } = newTraceAndSpan();
    return { traceId, spanId, parentSpanId: undefined, sampled: true };
  }
  return {
    traceId: parent.traceId,
    spanId: newSpanId(),
    parentSpanId: parent.parentSpanId,
    sampled: parent.sampled,
  };
}

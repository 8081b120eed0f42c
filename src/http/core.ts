// The global HTTP core: request/correlation ids on every response, one body parser (JSON
// only, 64 KiB, malformed → 400), and one error mapper that turns anything thrown — our
// AppErrors, Elysia's validation/parse/404 errors, database errors, bugs — into
// application/problem+json (SPEC §3.1). Nothing from a driver or a stack reaches a client.
import { Elysia, ValidationError as ElysiaValidationError } from "elysia";
import type { Logger } from "pino";
import { requestContext } from "../context.ts";
import { mapDbError } from "../db/errors.ts";
import { AppError, type FieldError, PROBLEM_CONTENT_TYPE, toProblem } from "./errors.ts";
import { idHeaders, idsOf, rememberIds, resolveRequestIds } from "./request-id.ts";

/** Largest accepted request body (SPEC §3.1). */
export const MAX_BODY_BYTES = 64 * 1024;
/** JSON nested deeper than this is refused before it reaches validation. */
export const MAX_JSON_DEPTH = 32;

export class PayloadTooLargeError extends AppError {
  constructor() {
    super("PAYLOAD_TOO_LARGE", 413, `The request body exceeds ${MAX_BODY_BYTES} bytes.`);
  }
}
export class MalformedJsonError extends AppError {
  constructor(detail = "The request body is not valid JSON.") {
    super("MALFORMED_JSON", 400, detail);
  }
}
export class UnsupportedMediaTypeError extends AppError {
  constructor() {
    super("UNSUPPORTED_MEDIA_TYPE", 415, "Request bodies must be application/json.");
  }
}
export class MethodNotAllowedError extends AppError {
  constructor(allow: readonly string[]) {
    super("METHOD_NOT_ALLOWED", 405, "The method is not allowed on this resource.", undefined, {
      Allow: allow.join(", "),
    });
  }
}
export class RouteNotFoundError extends AppError {
  constructor() {
    super("NOT_FOUND", 404, "No such route.");
  }
}
export class InternalError extends AppError {
  constructor() {
    super("INTERNAL_ERROR", 500, "An unexpected error occurred. It has been logged.");
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the body as text, never more than MAX_BODY_BYTES. With a Content-Length (checked
 * against the limit before this runs) HTTP/1.1 framing makes it the body's exact size: one
 * read. A chunked body has no declared size and is counted as it arrives. (The one-read path
 * also skips the ReadableStream machinery, a measurable part of a money POST's CPU.)
 */
async function readBodyLimited(request: Request): Promise<string> {
  if (request.headers.has("content-length")) {
    const bytes = await request.arrayBuffer();
    // Framing holds the body to its declared size on the wire; an in-process Request does not.
    if (bytes.byteLength > MAX_BODY_BYTES) throw new PayloadTooLargeError();
    return utf8.decode(bytes);
  }
  const body = request.body;
  if (body === null) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError();
    }
    chunks.push(value);
  }
  return utf8.decode(Buffer.concat(chunks));
}

function depthExceeds(value: unknown, max: number): boolean {
  // iterative walk: a hostile document must not overflow our own stack either
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d >= max) return true;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

export async function parseJsonBody(request: Request, contentType: string): Promise<unknown> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) throw new PayloadTooLargeError();
  let text: string;
  try {
    text = await readBodyLimited(request);
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new MalformedJsonError("The request body is not valid UTF-8.");
  }
  if (text.trim() === "") return null;
  const type = contentType.toLowerCase().trim();
  if (type !== "application/json" && !/^application\/[a-z0-9.+-]*\+json$/.test(type)) {
    throw new UnsupportedMediaTypeError();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new MalformedJsonError();
  }
  if (depthExceeds(parsed, MAX_JSON_DEPTH)) {
    throw new AppError(
      "VALIDATION_ERROR",
      400,
      `JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused.`,
      [{ field: "body", message: `nested deeper than ${MAX_JSON_DEPTH} levels`, code: "too_deep" }],
    );
  }
  return parsed;
}

/** Wire field name from a TypeBox error path ("/limits/0/x" → "limits.0.x"). */
function fieldOf(path: string, fallback: string): string {
  const f = path.replace(/^\//, "").split("/").join(".");
  return f === "" ? fallback : f;
}

function codeOf(message: string): string {
  if (/required property/i.test(message)) return "required";
  if (/unexpected property/i.test(message)) return "unknown_field";
  if (/length less/i.test(message)) return "too_long";
  if (/length greater/i.test(message)) return "too_short";
  if (/format|pattern/i.test(message)) return "format";
  if (/less or equal|greater or equal|less than|greater than|multiple of/i.test(message)) return "range";
  if (/^expected/i.test(message)) return "type";
  return "invalid";
}

export function validationFields(err: ElysiaValidationError): FieldError[] {
  const fallback = err.type === "body" ? "body" : err.type;
  const seen = new Map<string, FieldError>();
  let all: { path: string; message: string }[] = [];
  try {
    all = err.all as { path: string; message: string }[];
  } catch {
    all = [];
  }
  for (const e of all) {
    const field = fieldOf(e.path ?? "", fallback);
    if (!seen.has(field)) seen.set(field, { field, message: e.message, code: codeOf(e.message) });
  }
  if (seen.size === 0) seen.set(fallback, { field: fallback, message: "is invalid", code: "invalid" });
  return [...seen.values()];
}

export type CoreOptions = {
  logger: Logger;
  /** Methods registered for a path (for 405 + Allow); empty when the path is unknown. */
  allowedMethods: (path: string) => string[];
};

export function toAppError(
  err: unknown,
  code: string | number,
  request: Request,
  opts: CoreOptions,
): AppError {
  if (err instanceof AppError) return err;
  // Elysia wraps whatever our body parser throws (413, 415, malformed) in a ParseError.
  if (code === "PARSE" && err instanceof Error && err.cause instanceof AppError) return err.cause;
  if (err instanceof ElysiaValidationError || code === "VALIDATION") {
    const fields = validationFields(err as ElysiaValidationError);
    return new AppError("VALIDATION_ERROR", 400, `Invalid ${fields.map((f) => f.field).join(", ")}.`, fields);
  }
  // A value JavaScript cannot turn into a string (e.g. {"toString": "x"} where a string is
  // expected) makes Elysia's own ValidationError constructor throw while describing it. The
  // input was invalid either way: a 400, not a 500 (found by the fuzzer).
  if (err instanceof TypeError && err.stack?.includes("mapValueError") === true) {
    return new AppError("VALIDATION_ERROR", 400, "A field has a value of the wrong type.", [
      { field: "body", message: "a value has the wrong type and cannot be described", code: "type" },
    ]);
  }
  switch (code) {
    case "NOT_FOUND": {
      const allow = opts.allowedMethods(new URL(request.url).pathname);
      return allow.length > 0 ? new MethodNotAllowedError(allow) : new RouteNotFoundError();
    }
    case "PARSE":
      return new MalformedJsonError();
    case "INVALID_COOKIE_SIGNATURE":
      return new AppError("VALIDATION_ERROR", 400, "Invalid cookie.", []);
  }
  const mapped = mapDbError(err);
  if (mapped !== undefined) {
    if (mapped.status >= 500)
      opts.logger.warn({ err, request_id: idsOf(request).requestId }, "database unavailable");
    return mapped;
  }
  opts.logger.error({ err, request_id: idsOf(request).requestId }, "unhandled error");
  return new InternalError();
}

/**
 * Body sizes of Responses built here and by the idempotency layer. Elysia hands
 * onAfterResponse neither the error mapper's Response nor its body, so the access log and
 * the response-size histogram read the size recorded when the Response was built.
 */
const sentBytes = new WeakMap<Request, number>();
const encoder = new TextEncoder();

/** A JSON Response whose body size is recorded for the metrics and the access log. */
export function jsonResponse(
  request: Request,
  body: string,
  status: number,
  headers: Record<string, string>,
) {
  const bytes = encoder.encode(body);
  sentBytes.set(request, bytes.byteLength);
  return new Response(bytes, { status, headers: { ...headers, "content-length": String(bytes.byteLength) } });
}

/** Records the size of a body rendered outside jsonResponse (the observability plugin's JSON). */
export function recordSentSize(request: Request, bytes: number): void {
  sentBytes.set(request, bytes);
}

/** The body size recorded by jsonResponse for this request, if any. */
export function sentSizeOf(request: Request): number | undefined {
  return sentBytes.get(request);
}

/** Renders an AppError as the problem+json Response, ids included. */
export function problemResponse(err: AppError, request: Request): Response {
  const ids = idsOf(request);
  const body = JSON.stringify(toProblem(err, new URL(request.url).pathname, ids.requestId));
  return jsonResponse(request, body, err.status, {
    "content-type": PROBLEM_CONTENT_TYPE,
    ...idHeaders(ids),
    ...err.headers,
  });
}

export function corePlugin(opts: CoreOptions) {
  return new Elysia({ name: "paybridge-core" })
    .onRequest(({ request, set }) => {
      const ids = resolveRequestIds(request.headers);
      rememberIds(request, ids);
      Object.assign(set.headers, idHeaders(ids));
      // Makes the ids visible to every log line written while serving this request.
      requestContext.enterWith(ids);
      const declared = request.headers.get("content-length");
      if (declared !== null && Number(declared) > MAX_BODY_BYTES) throw new PayloadTooLargeError();
    })
    .onParse(({ request, contentType }) => parseJsonBody(request, contentType ?? ""))
    .onError(({ error, code, request, set }) => {
      const err = toAppError(error, code, request, opts);
      const ids = idsOf(request);
      // Status and headers go through `set` so other plugins' headers (CORS, security) survive.
      set.status = err.status;
      Object.assign(set.headers, idHeaders(ids), err.headers ?? {});
      set.headers["content-type"] = PROBLEM_CONTENT_TYPE;
      const body = JSON.stringify(toProblem(err, new URL(request.url).pathname, ids.requestId));
      sentBytes.set(request, encoder.encode(body).byteLength);
      return body;
    })
    .as("global");
}

/** Builds the 405 lookup from the app's registered routes (templates like /api/v1/users/:id). */
export function methodIndex(routes: () => readonly { method: string; path: string }[]) {
  let compiled: { re: RegExp; method: string }[] | undefined;
  return (path: string): string[] => {
    compiled ??= routes()
      .filter((r) => r.method !== "ALL" && r.method !== "HEAD")
      .map((r) => ({
        method: r.method,
        re: new RegExp(
          `^${r.path
            .split("/")
            .map((s) =>
              s.startsWith(":") ? "[^/]+" : s === "*" ? ".*" : s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
            )
            .join("/")}/?$`,
        ),
      }));
    return [...new Set(compiled.filter((r) => r.re.test(path)).map((r) => r.method))].sort();
  };
}

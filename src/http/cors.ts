// CORS (SPEC §1.1 CORS_ORIGINS). Origins match exactly (scheme, host and port); there are no
// patterns, so nothing like `https://evil-example.com` can slip past a suffix check. A
// wildcard entry answers `*` and never allows credentials; listed origins get their own
// origin echoed back with credentials. An origin that is not allowed gets no CORS headers
// at all, which is how a browser learns to refuse.

export const CORS_ALLOWED_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"] as const;
export const CORS_ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "Idempotency-Key",
  "X-Request-ID",
  "X-Correlation-ID",
  "traceparent",
] as const;
export const CORS_EXPOSED_HEADERS = [
  "X-Request-ID",
  "X-Correlation-ID",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "RateLimit-Policy",
  "Retry-After",
  "Idempotent-Replayed",
  "Location",
] as const;
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 600;

export type CorsPolicy = Readonly<{ wildcard: boolean; origins: ReadonlySet<string> }>;

export function createCorsPolicy(corsOrigins: readonly string[]): CorsPolicy {
  return {
    wildcard: corsOrigins.includes("*"),
    origins: new Set(corsOrigins.filter((o) => o !== "*")),
  };
}

/** Headers for an actual (non-preflight) request; empty when the origin is not allowed. */
export function corsHeaders(policy: CorsPolicy, origin: string | null): Record<string, string> {
  // Caches must key on Origin: the answer differs per origin whenever a list is configured.
  const headers: Record<string, string> = { Vary: "Origin" };
  if (origin === null) return headers;
  if (policy.origins.has(origin)) {
    headers["Access-Control-Allow-Origin"] = origin;
    headers["Access-Control-Allow-Credentials"] = "true";
  } else if (policy.wildcard) {
    headers["Access-Control-Allow-Origin"] = "*";
  } else {
    return headers;
  }
  headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS.join(", ");
  return headers;
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. */
export function isPreflight(request: Request): boolean {
  return (
    request.method === "OPTIONS" &&
    request.headers.has("origin") &&
    request.headers.has("access-control-request-method")
  );
}

/**
 * The answer to a preflight: 204 with the allowed methods and headers for an allowed origin,
 * a bare 204 (no CORS headers: the browser refuses) for any other.
 */
export function preflightResponse(policy: CorsPolicy, request: Request): Response {
  const base = corsHeaders(policy, request.headers.get("origin"));
  const headers: Record<string, string> = {
    Vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
  };
  if (base["Access-Control-Allow-Origin"] !== undefined) {
    headers["Access-Control-Allow-Origin"] = base["Access-Control-Allow-Origin"];
    if (base["Access-Control-Allow-Credentials"]) headers["Access-Control-Allow-Credentials"] = "true";
    headers["Access-Control-Allow-Methods"] = CORS_ALLOWED_METHODS.join(", ");
    headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS.join(", ");
    headers["Access-Control-Max-Age"] = String(CORS_MAX_AGE_SECONDS);
  }
  return new Response(null, { status: 204, headers });
}

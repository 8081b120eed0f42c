// Response headers that close common browser-side holes. The API serves JSON only, so it can
// forbid everything else: no MIME sniffing, no framing, no referrer leak, no caching of
// balances or transactions by browsers or shared proxies.

/** On every response (probes, /metrics and /docs included). */
export const BASE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
});

/** On /api/v1 responses: money data must never be stored by a cache. */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "Cache-Control": "no-store",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
});

/** Sent only when PayBridge itself terminates TLS (TLS_CERT_FILE): one year. */
export const HSTS_MAX_AGE_SECONDS = 31_536_000;

export function securityHeaders(path: string, tls: boolean): Record<string, string> {
  const headers: Record<string, string> = { ...BASE_SECURITY_HEADERS };
  if (path === "/api/v1" || path.startsWith("/api/v1/")) Object.assign(headers, API_SECURITY_HEADERS);
  if (tls) headers["Strict-Transport-Security"] = `max-age=${HSTS_MAX_AGE_SECONDS}`;
  return headers;
}

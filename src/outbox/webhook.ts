// Webhook delivery target (SPEC §6): POST of the envelope, signed so a receiver can prove it
// came from PayBridge and was not replayed later:
//   PayBridge-Signature: t=<unix seconds>,v1=<hex hmac-sha256(secret, "<t>.<body>")>
// Any 2xx is delivered; anything else (3xx included: redirects are not followed, a signed
// body must not be re-sent to another host) and timeouts are failures the relay retries.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { DeliveryTarget } from "./envelope.ts";

export const SIGNATURE_HEADER = "PayBridge-Signature";
/** How far a receiver should accept a signature timestamp from its own clock by default. */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;
/** At most this much of an error response body is kept in outbox.last_error. */
const ERROR_BODY_PREVIEW_CHARS = 200;

export function signPayload(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex");
  return `t=${timestampSeconds},v1=${mac}`;
}

/**
 * For webhook receivers: true when `header` (the PayBridge-Signature value) is a valid
 * signature of the exact raw request `body` with `secret`, made within `toleranceSeconds`
 * of now. Verify the raw bytes as received, before parsing the JSON.
 */
export function verifySignature(
  secret: string,
  header: string | null | undefined,
  body: string,
  toleranceSeconds = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  nowSeconds = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t" && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === "v1" && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (t === undefined || signatures.length === 0) return false;
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${t}.${body}`).digest("hex"));
  // Constant-time comparison; several v1 values allow a secret rotation on the sender side.
  return signatures.some((s) => timingSafeEqual(Buffer.from(s), expected));
}

export class WebhookStatusError extends Error {
  constructor(
    readonly status: number,
    preview: string,
  ) {
    super(`webhook answered HTTP ${status}${preview ? `: ${preview}` : ""}`);
    this.name = "WebhookStatusError";
  }
}

export type WebhookTargetOptions = {
  url: string;
  secret: string;
  timeoutMs: number;
  userAgent?: string;
  now?: () => number;
};

export function createWebhookTarget(opts: WebhookTargetOptions): DeliveryTarget {
  const now = opts.now ?? Date.now;
  const inFlight = new Set<AbortController>();
  return {
    name: "webhook",
    async deliver(envelope, body) {
      const controller = new AbortController();
      inFlight.add(controller);
      const timer = setTimeout(
        () => controller.abort(new Error(`webhook timed out after ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      try {
        const res = await fetch(opts.url, {
          method: "POST",
          body,
          redirect: "manual",
          signal: controller.signal,
          headers: {
            "content-type": "application/json",
            "user-agent": opts.userAgent ?? "PayBridge-Webhook/1",
            [SIGNATURE_HEADER]: signPayload(opts.secret, Math.floor(now() / 1000), body),
            "PayBridge-Event-Id": envelope.id,
            "PayBridge-Event-Type": envelope.type,
          },
        });
        if (res.status < 200 || res.status > 299) {
          const text = await res.text().catch(() => "");
          throw new WebhookStatusError(res.status, text.slice(0, ERROR_BODY_PREVIEW_CHARS));
        }
        // Drain the body so the connection can be reused.
        await res.arrayBuffer().catch(() => {});
      } catch (err) {
        if (controller.signal.aborted && controller.signal.reason instanceof Error)
          throw controller.signal.reason;
        throw err;
      } finally {
        clearTimeout(timer);
        inFlight.delete(controller);
      }
    },
    async close() {
      for (const c of inFlight) c.abort(new Error("relay stopping"));
    },
  };
}

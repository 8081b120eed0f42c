// A careful API client: every money request carries an Idempotency-Key, and on a timeout, a
// connection error, a 5xx, 429 or 409 IDEMPOTENCY_KEY_IN_USE it sends the SAME key and the SAME
// body again (with backoff) until it gets a definitive answer or its deadline passes. It
// records what the service acknowledged, which the invariant checker holds the database to.
import { SignJWT } from "jose";
import { sleep } from "./net.ts";

/** One attempt's budget: long enough for a loaded machine, short enough to notice a hang. */
export const REQUEST_TIMEOUT_MS = 10_000;
const BACKOFF_START_MS = 25;
const BACKOFF_MAX_MS = 1_000;

export type Answer = {
  status: number;
  body: unknown;
  replayed: boolean;
  contentType: string;
  /** Retry-After in seconds, when sent */
  retryAfter?: number;
};

export type Outcome =
  /** 2xx: the effect happened (exactly once, the checker verifies). */
  | { kind: "ok"; answer: Answer; attempts: number }
  /** a definitive 4xx (stored or not): no effect. */
  | { kind: "rejected"; answer: Answer; attempts: number }
  /** gave up before a definitive answer: the effect may or may not have happened. */
  | { kind: "unknown"; lastError: string; attempts: number };

export type ClientStats = {
  requests: number;
  attempts: number;
  retried: number;
  timeouts: number;
  /** first attempts whose response the client abandoned on purpose (lostResponseShare) */
  abandoned: number;
  connErrors: number;
  status5xx: number;
  status503: number;
  inUse409: number;
  replays: number;
  /** 5xx other than 503: a server bug unless caused by a fault (e.g. SIGKILL mid-response). */
  unexpected5xx: { status: number; path: string; body: string }[];
};

export function newStats(): ClientStats {
  return {
    requests: 0,
    attempts: 0,
    retried: 0,
    timeouts: 0,
    abandoned: 0,
    connErrors: 0,
    status5xx: 0,
    status503: 0,
    inUse409: 0,
    replays: 0,
    unexpected5xx: [],
  };
}

export async function mintToken(secret: string, sub: string, role: "admin" | "user", ttlSeconds = 86_400) {
  return await new SignJWT({ role })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

function retryable(status: number, body: unknown): boolean {
  if (status >= 500 || status === 429) return true;
  return status === 409 && (body as { code?: string } | null)?.code === "IDEMPOTENCY_KEY_IN_USE";
}

/** A lost response: the client stops waiting after this long (the server may still commit). */
const LOST_RESPONSE_MAX_MS = 40;

export class CarefulClient {
  /**
   * Share of first attempts whose response is "lost": the client gives up after a few ms,
   * as on a flaky network, and must then retry with the same key. Exercises replays and
   * IDEMPOTENCY_KEY_IN_USE far more often than process kills alone.
   */
  lostResponseShare = 0;
  constructor(
    public baseUrl: string,
    private readonly token: string,
    readonly stats: ClientStats = newStats(),
  ) {}

  /** One attempt, no retry. Throws on network errors and timeouts. */
  async once(
    method: string,
    path: string,
    body?: unknown,
    key?: string,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Answer> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (key !== undefined) headers["idempotency-key"] = key;
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : null;
    } catch {
      // not JSON; kept as text
    }
    return {
      status: res.status,
      body: parsed,
      replayed: res.headers.get("idempotent-replayed") === "true",
      contentType: res.headers.get("content-type") ?? "",
      retryAfter: res.headers.has("retry-after") ? Number(res.headers.get("retry-after")) : undefined,
    };
  }

  /**
   * Sends until definitive or `deadlineMs` passes. The body object is serialised afresh each
   * time but never changed, so the fingerprint stays the same.
   */
  async send(
    method: string,
    path: string,
    body: unknown,
    key: string | undefined,
    deadlineMs: number,
  ): Promise<Outcome> {
    this.stats.requests++;
    const deadline = Date.now() + deadlineMs;
    let backoff = BACKOFF_START_MS;
    let attempts = 0;
    let lastError = "";
    for (;;) {
      attempts++;
      this.stats.attempts++;
      if (attempts === 2) this.stats.retried++;
      let retryAfterMs = 0;
      const lose = attempts === 1 && key !== undefined && Math.random() < this.lostResponseShare;
      try {
        const a = await this.once(
          method,
          path,
          body,
          key,
          lose ? 1 + Math.random() * LOST_RESPONSE_MAX_MS : REQUEST_TIMEOUT_MS,
        );
        if (a.replayed) this.stats.replays++;
        if (!retryable(a.status, a.body)) {
          return a.status < 300
            ? { kind: "ok", answer: a, attempts }
            : { kind: "rejected", answer: a, attempts };
        }
        if (a.status === 503) this.stats.status503++;
        else if (a.status >= 500) {
          this.stats.status5xx++;
          this.stats.unexpected5xx.push({
            status: a.status,
            path,
            body: JSON.stringify(a.body).slice(0, 300),
          });
        } else if (a.status === 409) this.stats.inUse409++;
        lastError = `HTTP ${a.status}`;
        retryAfterMs = Math.min(BACKOFF_MAX_MS, 1000 * (a.retryAfter ?? 0));
      } catch (err) {
        const e = err as Error;
        if (lose && (e.name === "TimeoutError" || e.name === "AbortError")) this.stats.abandoned++;
        else if (e.name === "TimeoutError" || e.name === "AbortError") this.stats.timeouts++;
        else this.stats.connErrors++;
        lastError = `${e.name}: ${e.message}`.slice(0, 200);
      }
      if (Date.now() > deadline) return { kind: "unknown", lastError, attempts };
      await sleep(Math.max(retryAfterMs, backoff * (0.5 + Math.random())));
      backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    }
  }
}

/** One client per user (role user, its own token), sharing the run's statistics. */
export async function ownerClients(
  baseUrl: string,
  secret: string,
  userIds: string[],
  stats: ClientStats,
  lostResponseShare: number,
): Promise<CarefulClient[]> {
  return await Promise.all(
    userIds.map(async (id) => {
      const c = new CarefulClient(baseUrl, await mintToken(secret, id, "user"), stats);
      c.lostResponseShare = lostResponseShare;
      return c;
    }),
  );
}

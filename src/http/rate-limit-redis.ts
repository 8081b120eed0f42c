// Token buckets in Redis, shared by every replica. One Lua script reads, refills, takes and
// writes the bucket atomically, using Redis's own clock so replicas with skewed clocks agree.
// Any failure (down, slow, refused) rejects quickly: the limiter then fails open. Commands are
// never queued while disconnected, and reconnects are attempted in the background with a
// backoff, so a dead Redis costs each request at most REDIS_COMMAND_TIMEOUT_MS.
import { RedisClient } from "bun";
import type { BucketRule, RateDecision, RateLimitStore } from "./rate-limit.ts";
import { capacityOf } from "./rate-limit.ts";

/** A request waits at most this long for Redis before the limiter fails open. */
export const REDIS_COMMAND_TIMEOUT_MS = 250;
/** TCP + handshake budget of one connection attempt (runs in the background). */
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** After a failed connection attempt, requests fail open at once for this long. */
export const REDIS_RECONNECT_BACKOFF_MS = 1_000;
/** Keeps deployments sharing one Redis apart and makes every key easy to find. */
export const REDIS_DEFAULT_PREFIX = "paybridge:ratelimit:";

/** KEYS[1] bucket; ARGV[1] capacity, ARGV[2] tokens per minute. Mirrors takeToken(). */
export const TOKEN_BUCKET_LUA = `
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = capacity
if state[1] and state[2] then
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(capacity, tonumber(state[1]) + elapsed * per_ms)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local reset_ms = math.ceil((capacity - tokens) / per_ms)
local retry_ms = 0
if allowed == 0 then retry_ms = math.ceil((1 - tokens) / per_ms) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], reset_ms + 1000)
return {allowed, math.floor(tokens), reset_ms, retry_ms}
`;

const SCRIPT_SHA = new Bun.CryptoHasher("sha1").update(TOKEN_BUCKET_LUA).digest("hex");

export type RedisStoreOptions = {
  prefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  reconnectBackoffMs?: number;
};

class StoreUnavailable extends Error {}

export class RedisRateLimitStore implements RateLimitStore {
  readonly kind = "redis" as const;
  readonly prefix: string;
  private client: RedisClient | undefined;
  private connecting: Promise<RedisClient> | undefined;
  private retryAtMs = 0;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly opts: RedisStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? REDIS_DEFAULT_PREFIX;
  }

  take(key: string, rule: BucketRule): Promise<RateDecision> {
    const capacity = capacityOf(rule);
    return withTimeout(
      this.run(`${this.prefix}${key}`, capacity, rule.perMin).then(
        ([allowed, remaining, resetMs, retryAfterMs]) => ({
          allowed: allowed === 1,
          limit: capacity,
          remaining,
          resetMs,
          retryAfterMs,
        }),
      ),
      this.opts.commandTimeoutMs ?? REDIS_COMMAND_TIMEOUT_MS,
    );
  }

  private async run(
    key: string,
    capacity: number,
    perMin: number,
  ): Promise<[number, number, number, number]> {
    const client = await this.connected();
    const args = [key, String(capacity), String(perMin)];
    let reply: unknown;
    try {
      reply = await client.send("EVALSHA", [SCRIPT_SHA, "1", ...args]);
    } catch (err) {
      // First use on this Redis (or after a restart / SCRIPT FLUSH): send the body once.
      if (!(err instanceof Error && err.message.includes("NOSCRIPT"))) throw err;
      reply = await client.send("EVAL", [TOKEN_BUCKET_LUA, "1", ...args]);
    }
    if (!Array.isArray(reply) || reply.length !== 4 || !reply.every((n) => typeof n === "number")) {
      throw new Error("redis: unexpected rate limit script reply");
    }
    return reply as [number, number, number, number];
  }

  private connected(): Promise<RedisClient> {
    if (this.closed) return Promise.reject(new StoreUnavailable("rate limit store closed"));
    if (this.client?.connected) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    if (Date.now() < this.retryAtMs) {
      return Promise.reject(new StoreUnavailable("redis unreachable (waiting before reconnecting)"));
    }
    this.client?.close();
    this.client = undefined;
    const client = new RedisClient(this.url, {
      connectionTimeout: this.opts.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS,
      // Queued commands would make requests wait on a dead server: fail instead.
      enableOfflineQueue: false,
      // Reconnection is driven here (with a backoff) so its state is never ambiguous.
      autoReconnect: false,
    });
    this.connecting = client
      .connect()
      .then(() => {
        if (this.closed) {
          client.close();
          throw new StoreUnavailable("rate limit store closed");
        }
        this.client = client;
        return client;
      })
      .catch((err) => {
        this.retryAtMs = Date.now() + (this.opts.reconnectBackoffMs ?? REDIS_RECONNECT_BACKOFF_MS);
        client.close();
        throw err;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client?.close();
    this.client = undefined;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailable(`redis did not answer within ${ms} ms`)), ms);
  });
  // A late answer or failure after the timeout is dropped, never unhandled.
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

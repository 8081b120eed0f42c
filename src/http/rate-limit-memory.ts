// In-process token buckets: the default store, one per replica. Memory is bounded: a bucket
// that has refilled completely carries no information (a fresh bucket is identical), so
// idle keys are dropped by a periodic sweep; when the map still reaches its cap, the least
// recently used keys go first (their callers simply start again with a full bucket).
import { type BucketRule, type RateDecision, type RateLimitStore, takeToken } from "./rate-limit.ts";

/** Default cap on tracked callers (~100 bytes each: a few MiB at most). */
export const MEMORY_MAX_KEYS = 50_000;
/** How often idle (fully refilled) buckets are swept away. */
export const MEMORY_SWEEP_INTERVAL_MS = 60_000;

type Bucket = { tokens: number; atMs: number; fullAtMs: number };

export type MemoryStoreOptions = {
  maxKeys?: number;
  sweepIntervalMs?: number;
  /** Injected clock for tests; wall time by default. */
  now?: () => number;
};

export class MemoryRateLimitStore implements RateLimitStore {
  readonly kind = "memory" as const;
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly timer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxKeys = opts.maxKeys ?? MEMORY_MAX_KEYS;
    this.now = opts.now ?? Date.now;
    const every = opts.sweepIntervalMs ?? MEMORY_SWEEP_INTERVAL_MS;
    if (every > 0) {
      this.timer = setInterval(() => this.sweep(), every);
      // The sweep must never keep a process alive on its own.
      this.timer.unref?.();
    }
  }

  get size(): number {
    return this.buckets.size;
  }

  async take(key: string, rule: BucketRule): Promise<RateDecision> {
    const now = this.now();
    const prev = this.buckets.get(key);
    const { decision, tokens } = takeToken(prev, rule, now);
    // Delete + set moves the key to the end of the Map: insertion order is recency order.
    this.buckets.delete(key);
    this.buckets.set(key, { tokens, atMs: now, fullAtMs: now + decision.resetMs });
    if (this.buckets.size > this.maxKeys) this.evict(now);
    return decision;
  }

  /** Drops every bucket that has refilled completely. */
  sweep(now = this.now()): number {
    let dropped = 0;
    for (const [key, b] of this.buckets) {
      if (b.fullAtMs <= now) {
        this.buckets.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  private evict(now: number): void {
    if (this.sweep(now) > 0 && this.buckets.size <= this.maxKeys) return;
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys) break;
      this.buckets.delete(key);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.buckets.clear();
  }
}

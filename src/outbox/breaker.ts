// A circuit breaker per delivery target (SPEC §5.6). While a target is down the relay stops
// hammering it: after FAILURE_THRESHOLD consecutive failures the breaker opens, and no call
// goes through until the cooldown has passed; then exactly one probe call is allowed
// (half-open). A successful probe closes the breaker, a failed one re-opens it.

export type BreakerState = "closed" | "half_open" | "open";

/** Gauge values of paybridge_breaker_state (SPEC §5.2). */
export function breakerGaugeValue(state: BreakerState): 0 | 1 | 2 {
  switch (state) {
    case "closed":
      return 0;
    case "half_open":
      return 1;
    case "open":
      return 2;
    default: {
      const never: never = state;
      throw new Error(`unknown breaker state ${String(never)}`);
    }
  }
}

export const BREAKER_FAILURE_THRESHOLD = 5;
export const BREAKER_COOLDOWN_MS = 15_000;

export type BreakerOptions = {
  failureThreshold?: number;
  cooldownMs?: number;
  /** Called on every state change (metrics, logs). */
  onStateChange?: (state: BreakerState, previous: BreakerState) => void;
  now?: () => number;
};

/** Thrown instead of calling the target while the breaker refuses calls. */
export class BreakerOpenError extends Error {
  constructor(readonly target: string) {
    super(`circuit breaker for ${target} is open`);
    this.name = "BreakerOpenError";
  }
}

export class CircuitBreaker {
  private current: BreakerState = "closed";
  private consecutiveFailures = 0;
  private openedAt = 0;
  private probeInFlight = false;
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;

  constructor(
    readonly target: string,
    private readonly opts: BreakerOptions = {},
  ) {
    this.threshold = opts.failureThreshold ?? BREAKER_FAILURE_THRESHOLD;
    this.cooldownMs = opts.cooldownMs ?? BREAKER_COOLDOWN_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The state as seen now (an open breaker whose cooldown passed reads as half-open). */
  state(): BreakerState {
    if (this.current === "open" && this.now() - this.openedAt >= this.cooldownMs) return "half_open";
    return this.current;
  }

  /** Milliseconds until a call may be attempted again (0 when it may be attempted now). */
  waitMs(): number {
    switch (this.state()) {
      case "closed":
        return 0;
      case "half_open":
        return this.probeInFlight ? this.cooldownMs : 0;
      case "open":
        return Math.max(0, this.openedAt + this.cooldownMs - this.now());
      default:
        return 0;
    }
  }

  /** Runs `fn` through the breaker; throws BreakerOpenError without calling it when refused. */
  async exec<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state();
    if (state === "open") throw new BreakerOpenError(this.target);
    const probe = state === "half_open";
    if (probe) {
      if (this.probeInFlight) throw new BreakerOpenError(this.target);
      this.probeInFlight = true;
      this.transition("half_open");
    }
    try {
      const result = await fn();
      this.recordSuccess();
      return result;
    } catch (err) {
      this.recordFailure(probe);
      throw err;
    } finally {
      if (probe) this.probeInFlight = false;
    }
  }

  private recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.transition("closed");
  }

  private recordFailure(probe: boolean): void {
    this.consecutiveFailures += 1;
    if (probe || (this.current === "closed" && this.consecutiveFailures >= this.threshold)) {
      this.openedAt = this.now();
      this.transition("open");
    }
    // A call that started before the breaker opened and fails late keeps the cooldown running.
  }

  private transition(next: BreakerState): void {
    const previous = this.current;
    if (previous === next) return;
    this.current = next;
    this.opts.onStateChange?.(next, previous);
  }
}

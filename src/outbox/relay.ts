// The outbox relay (SPEC §6): moves committed outbox rows to the delivery targets, at least
// once and in order per aggregate, safely with any number of relays running at once.
//
// One batch is one database transaction: claim rows (row locks, see store.ts), deliver them,
// mark the outcome, commit. The locks are the relay's lease: if the process dies mid-batch
// its connection drops, the locks vanish with it, the rows are still PENDING and another
// relay (or the restarted one) delivers them again; the stream deduplicates by event id.
// Events of different aggregates are delivered concurrently; events of one aggregate one
// after the other, stopping at the first failure.
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Sql } from "../db/client.ts";
import type { Metrics } from "../observability/metrics.ts";
import { BreakerOpenError, type BreakerState, breakerGaugeValue, CircuitBreaker } from "./breaker.ts";
import { type DeliveryTarget, toEnvelope } from "./envelope.ts";
import { createNatsTarget } from "./nats.ts";
import {
  type Chain,
  claimChains,
  clearWaiting,
  type FailedAttempt,
  markFailed,
  markPublished,
  markWaiting,
  purgeOld,
} from "./store.ts";
import { createWebhookTarget } from "./webhook.ts";

/** The channel the outbox trigger notifies (migration 00007). */
export const NOTIFY_CHANNEL = "paybridge_outbox";
/** Aggregates claimed per batch. */
export const RELAY_BATCH_AGGREGATES = 500;
/** Rows claimed per batch (heads plus their following events). */
export const RELAY_BATCH_MAX_ROWS = 2_500;
/** Fallback poll when no notification arrives (missed notify, LISTEN connection down). */
export const RELAY_POLL_INTERVAL_MS = 1_000;
/** No new delivery starts in a batch after this long; the rest stays claimable. */
export const RELAY_BATCH_BUDGET_MS = 10_000;
export const RELAY_BACKOFF_BASE_MS = 1_000;
export const RELAY_BACKOFF_MAX_MS = 5 * 60_000;
export const RELAY_PURGE_INTERVAL_MS = 60_000;
/** Pause after an unexpected error (database down): the loop retries after this. */
export const RELAY_ERROR_PAUSE_MS = 2_000;
const LISTEN_RETRY_MS = 10_000;
/** An idle relay's "notify me" registration outlives its poll interval by this much. */
const WAITING_LEASE_SLACK_MS = 5_000;
/** Aggregates delivered in parallel, per target kind (webhook receivers are often small). */
const CONCURRENCY = { nats: 256, webhook: 16 } as const;

export type RelayTuning = {
  batchAggregates?: number;
  batchMaxRows?: number;
  pollIntervalMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  breakerFailureThreshold?: number;
  breakerCooldownMs?: number;
  /** Internal (tests, benchmarks): a private JetStream stream and subject space. */
  natsStreamName?: string;
  natsSubjectPrefix?: string;
  natsPublishTimeoutMs?: number;
  /** Internal (tests): replaces the targets built from the configuration. */
  targets?: DeliveryTarget[];
};

export type RelayDeps = {
  config: Config;
  sql: Sql;
  logger: Logger;
  metrics: Metrics;
  tuning?: RelayTuning;
};

export type RelayState = {
  status: "idle" | "running" | "stopping" | "stopped";
  targets: string[];
  breakers: Record<string, BreakerState>;
  listening: boolean;
  delivered: number;
  lastBatchAt: string | null;
  lastError: string | null;
};

export type Relay = {
  /** Finishes the current batch, then stops; resolves when the relay has stopped. */
  stop(): Promise<void>;
  state(): RelayState;
  /** Asks for a batch now (in-process writers may call it after commit). */
  wake(): void;
};

/** Exponential backoff with equal jitter for the n-th failed attempt (n >= 1). */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Builds the delivery targets the configuration asks for (none: the relay idles). */
export function targetsFromConfig(
  config: Config,
  logger: Logger,
  tuning: RelayTuning = {},
): DeliveryTarget[] {
  if (tuning.targets !== undefined) return tuning.targets;
  const targets: DeliveryTarget[] = [];
  if (config.natsUrl !== undefined) {
    targets.push(
      createNatsTarget({
        url: config.natsUrl,
        logger,
        streamName: tuning.natsStreamName,
        subjectPrefix: tuning.natsSubjectPrefix,
        publishTimeoutMs: tuning.natsPublishTimeoutMs,
      }),
    );
  }
  if (config.webhookUrl !== undefined && config.webhookSecret !== undefined) {
    targets.push(
      createWebhookTarget({
        url: config.webhookUrl,
        secret: config.webhookSecret,
        timeoutMs: config.webhookTimeoutMs,
      }),
    );
  }
  return targets;
}

type Outcome = { published: string[]; failed: FailedAttempt[]; parkedTarget: Map<string, string> };

export function startRelay(deps: RelayDeps): Relay {
  const { config, sql, metrics } = deps;
  const tuning = deps.tuning ?? {};
  const log = deps.logger.child({ component: "relay" });
  const targets = targetsFromConfig(config, log, tuning);
  const breakers = new Map<string, CircuitBreaker>();
  for (const t of targets) {
    const breaker = new CircuitBreaker(t.name, {
      failureThreshold: tuning.breakerFailureThreshold,
      cooldownMs: tuning.breakerCooldownMs,
      onStateChange: (state, previous) => {
        metrics.breakerState.set({ target: t.name }, breakerGaugeValue(state));
        const level = state === "open" ? "warn" : "info";
        log[level]({ target: t.name, state, previous }, `delivery circuit breaker ${state}`);
      },
    });
    breakers.set(t.name, breaker);
    metrics.breakerState.set({ target: t.name }, 0);
  }
  const pollMs = tuning.pollIntervalMs ?? RELAY_POLL_INTERVAL_MS;
  const backoffBase = tuning.backoffBaseMs ?? RELAY_BACKOFF_BASE_MS;
  const backoffMax = tuning.backoffMaxMs ?? RELAY_BACKOFF_MAX_MS;
  const concurrency = Math.min(
    ...targets.map((t) => CONCURRENCY[t.name as keyof typeof CONCURRENCY] ?? 8),
    128,
  );
  // The idle-in-transaction timeout of the batch transaction must outlast the slowest batch.
  const slowestDeliveryMs =
    Math.max(config.webhookTimeoutMs, tuning.natsPublishTimeoutMs ?? 5_000) * targets.length;
  const batchTxIdleTimeoutMs = RELAY_BATCH_BUDGET_MS + slowestDeliveryMs + 10_000;

  const st: RelayState = {
    status: targets.length === 0 ? "idle" : "running",
    targets: targets.map((t) => t.name),
    breakers: {},
    listening: false,
    delivered: 0,
    lastBatchAt: null,
    lastError: null,
  };
  let stopping = false;
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let unlisten: (() => Promise<void>) | undefined;
  let lastListenTry = 0;
  let lastPurge = 0;
  // Registered in outbox_listeners as waiting for a NOTIFY (only while idle: see 00007).
  const relayId = crypto.randomUUID();
  let waiting = false;

  const wake = () => {
    woken = true;
    wakeUp?.();
  };

  function sleep(ms: number): Promise<void> {
    if (woken || stopping) {
      woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });
  }

  async function ensureListening(): Promise<void> {
    if (unlisten !== undefined || targets.length === 0 || Date.now() - lastListenTry < LISTEN_RETRY_MS)
      return;
    lastListenTry = Date.now();
    try {
      const sub = await sql.listen(NOTIFY_CHANNEL, wake);
      unlisten = sub.unlisten;
      st.listening = true;
    } catch (err) {
      log.warn({ err: errorText(err) }, "LISTEN failed; polling only until it succeeds");
    }
  }

  /** Delivers one event to every target; returns an error text, "deferred", or null when delivered. */
  async function deliverOne(
    chainRow: Chain[number],
    probe: boolean,
  ): Promise<{ error: string; target: string } | null | "deferred"> {
    const envelope = toEnvelope(chainRow);
    const body = JSON.stringify(envelope);
    for (const t of targets) {
      const breaker = breakers.get(t.name) as CircuitBreaker;
      try {
        await breaker.exec(() => t.deliver(envelope, body));
        metrics.outboxPublished.inc({ target: t.name });
      } catch (err) {
        // A refused call (breaker open) or a failed probe says the target is down, not that
        // this event is bad: the row keeps its attempt budget.
        if (err instanceof BreakerOpenError || probe) return "deferred";
        return { error: `${t.name}: ${errorText(err)}`, target: t.name };
      }
    }
    return null;
  }

  async function deliverChains(chains: Chain[], probe: boolean): Promise<Outcome> {
    const out: Outcome = { published: [], failed: [], parkedTarget: new Map() };
    const deadline = Date.now() + RELAY_BATCH_BUDGET_MS;
    const queue = [...chains];
    const worker = async () => {
      for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
        for (const row of chain) {
          if (Date.now() > deadline) break;
          const result = await deliverOne(row, probe);
          if (result === null) {
            out.published.push(row.id);
            continue;
          }
          if (result !== "deferred") {
            const delayMs = backoffDelayMs(row.attempts + 1, backoffBase, backoffMax);
            out.failed.push({ id: row.id, error: result.error, delayMs });
            out.parkedTarget.set(row.id, result.target);
          }
          break; // later events of this aggregate wait for this one
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, chains.length) }, worker));
    return out;
  }

  /** One claim-deliver-mark transaction. Returns the number of rows claimed. */
  async function runBatch(probe: boolean): Promise<number> {
    const heads = probe ? 1 : (tuning.batchAggregates ?? RELAY_BATCH_AGGREGATES);
    const maxRows = probe ? 1 : (tuning.batchMaxRows ?? RELAY_BATCH_MAX_ROWS);
    let claimed = 0;
    let parked: string[] = [];
    let outcome: Outcome | undefined;
    await sql.begin(async (tx) => {
      await tx`SELECT set_config('idle_in_transaction_session_timeout', ${String(batchTxIdleTimeoutMs)}, true)`;
      const chains = await claimChains(tx, heads, maxRows);
      claimed = chains.reduce((n, c) => n + c.length, 0);
      if (claimed === 0) return;
      outcome = await deliverChains(chains, probe);
      await markPublished(tx, outcome.published);
      parked = await markFailed(tx, outcome.failed, config.outboxMaxAttempts);
    });
    if (outcome !== undefined) {
      st.delivered += outcome.published.length;
      st.lastBatchAt = new Date().toISOString();
      for (const id of parked) {
        metrics.outboxFailed.inc({ target: outcome.parkedTarget.get(id) ?? "unknown" });
        log.error(
          { event_id: id },
          "event parked as FAILED after its last attempt; requeue it once the cause is fixed",
        );
      }
      if (outcome.failed.length > 0) {
        log.warn(
          { failed: outcome.failed.length, first_error: outcome.failed[0]?.error },
          "outbox delivery failed; will retry",
        );
      }
    }
    return claimed;
  }

  async function maybePurge(): Promise<void> {
    if (Date.now() - lastPurge < RELAY_PURGE_INTERVAL_MS) return;
    lastPurge = Date.now();
    const removed = await purgeOld(sql, config.outboxRetentionHours, targets.length === 0);
    if (removed > 0) log.info({ removed }, "purged old outbox rows");
  }

  /** What the breakers allow now: a normal batch, one probe event, or waiting. */
  function gate(): { mode: "batch" | "probe" } | { mode: "wait"; ms: number } {
    let probe = false;
    let waitMs = 0;
    for (const b of breakers.values()) {
      const w = b.waitMs();
      if (w > 0) waitMs = Math.max(waitMs, w);
      else if (b.state() === "half_open") probe = true;
    }
    if (waitMs > 0) return { mode: "wait", ms: waitMs };
    return { mode: probe ? "probe" : "batch" };
  }

  async function loop(): Promise<void> {
    if (targets.length === 0)
      log.warn("no delivery target configured (NATS_URL, WEBHOOK_URL): relay idle, purge only");
    while (!stopping) {
      try {
        await maybePurge();
        if (targets.length === 0) {
          await sleep(RELAY_PURGE_INTERVAL_MS);
          continue;
        }
        await ensureListening();
        const g = gate();
        if (g.mode === "wait") {
          await sleep(Math.min(g.ms, RELAY_PURGE_INTERVAL_MS));
          continue;
        }
        const claimed = await runBatch(g.mode === "probe");
        st.lastError = null;
        if (claimed > 0) {
          // Busy: writers need not notify us; more may be right behind this batch, go again.
          if (waiting) {
            waiting = false;
            await clearWaiting(sql, relayId);
          }
          continue;
        }
        if (st.listening) {
          const first = !waiting;
          await markWaiting(sql, relayId, pollMs + WAITING_LEASE_SLACK_MS);
          waiting = true;
          // A row committed just before we registered raised no NOTIFY: look once more.
          if (first) continue;
        }
        await sleep(pollMs);
      } catch (err) {
        st.lastError = errorText(err);
        log.error({ err: st.lastError }, "relay batch failed; retrying");
        await sleep(RELAY_ERROR_PAUSE_MS);
      }
    }
  }

  const running = loop();

  return {
    wake,
    state() {
      const breakerStates: Record<string, BreakerState> = {};
      for (const [name, b] of breakers) breakerStates[name] = b.state();
      return { ...st, breakers: breakerStates };
    },
    async stop() {
      if (!stopping) {
        stopping = true;
        st.status = "stopping";
        wakeUp?.();
      }
      await running;
      if (waiting) await clearWaiting(sql, relayId).catch(() => {});
      if (unlisten !== undefined) {
        const u = unlisten;
        unlisten = undefined;
        st.listening = false;
        await u().catch(() => {});
      }
      await Promise.all(targets.map((t) => t.close().catch(() => {})));
      st.status = "stopped";
    },
  };
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message.slice(0, 500);
  return String(err).slice(0, 500);
}

// The outbox part of GET /health/detailed (SPEC §5.1): backlog, oldest pending age, parked
// events and breaker states. Delivery trouble is `warn`, never `fail`: the API keeps serving
// and events wait safely in the outbox. With no target configured the backlog is expected
// (events are read from /events) and not a warning.
import type { Config } from "../config.ts";
import type { Sql } from "../db/client.ts";
import type { BreakerState } from "./breaker.ts";
import type { Relay } from "./relay.ts";
import { type OutboxStats, outboxStats } from "./store.ts";

/** A pending event older than this makes the outbox check `warn`. */
export const OUTBOX_OLDEST_WARN_SECONDS = 300;

export type RelayHealth = {
  status: "pass" | "warn";
  /** Configured delivery targets ("nats", "webhook"); empty: events only via /events. */
  targets: string[];
  relay: "running" | "idle" | "stopping" | "stopped" | "off";
  pending: number;
  failed: number;
  oldest_pending_age_seconds: number | null;
  breakers: Record<string, BreakerState>;
  warnings: string[];
};

/** The configured delivery targets; empty when events are only read from /events. */
export function deliveryTargets(config: Config): string[] {
  const targets: string[] = [];
  if (config.natsUrl !== undefined) targets.push("nats");
  if (config.webhookUrl !== undefined) targets.push("webhook");
  return targets;
}

/**
 * The outbox verdict, the one rule for /health/detailed and relayHealth: parked events warn;
 * an old pending event warns only when a target should have delivered it (with no target a
 * backlog is expected: events are read from /events). Never `fail`.
 */
export function outboxVerdict(
  stats: OutboxStats,
  config: Config,
): { backlog: "pass" | "warn"; parked: "pass" | "warn" } {
  const stale =
    deliveryTargets(config).length > 0 &&
    stats.oldestPendingAgeSeconds !== null &&
    stats.oldestPendingAgeSeconds > OUTBOX_OLDEST_WARN_SECONDS;
  return { backlog: stale ? "warn" : "pass", parked: stats.failed > 0 ? "warn" : "pass" };
}

/**
 * Reads the outbox state. `relay` is this process's relay (undefined when it runs
 * elsewhere, e.g. OUTBOX_RELAY=off with a separate `paybridge relay`). Throws when the
 * database cannot be read; the caller's probe deadline applies.
 */
export async function relayHealth(sql: Sql, opts: { config: Config; relay?: Relay }): Promise<RelayHealth> {
  const stats = await outboxStats(sql);
  const state = opts.relay?.state();
  const targets = deliveryTargets(opts.config);
  const verdict = outboxVerdict(stats, opts.config);
  const breakers = state?.breakers ?? {};
  const warnings: string[] = [];
  for (const [target, s] of Object.entries(breakers)) {
    if (s !== "closed") warnings.push(`${target} circuit breaker ${s}`);
  }
  if (verdict.parked === "warn") warnings.push(`${stats.failed} event(s) parked as FAILED`);
  if (verdict.backlog === "warn") {
    warnings.push(`oldest pending event is ${Math.round(stats.oldestPendingAgeSeconds ?? 0)} s old`);
  }
  return {
    status: warnings.length > 0 ? "warn" : "pass",
    targets,
    relay: state?.status ?? "off",
    pending: stats.pending,
    failed: stats.failed,
    oldest_pending_age_seconds:
      stats.oldestPendingAgeSeconds === null ? null : Math.round(stats.oldestPendingAgeSeconds),
    breakers,
    warnings,
  };
}

// The outbox part of GET /health/detailed (SPEC §5.1): backlog, oldest pending age, parked
// events and breaker states. Delivery trouble is `warn`, never `fail`: the API keeps serving
// and events wait safely in the outbox. With no target configured the backlog is expected
// (events are read from /events) and not a warning.
import type { Config } from "../config.ts";
import type { Sql } from "../db/client.ts";
import type { BreakerState } from "./breaker.ts";
import type { Relay } from "./relay.ts";
import { outboxStats } from "./store.ts";

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

/**
 * Reads the outbox state. `relay` is this process's relay (undefined when it runs
 * elsewhere, e.g. OUTBOX_RELAY=off with a separate `paybridge relay`). Throws when the
 * database cannot be read; the caller's probe deadline applies.
 */
export async function relayHealth(sql: Sql, opts: { config: Config; relay?: Relay }): Promise<RelayHealth> {
  const stats = await outboxStats(sql);
  const state = opts.relay?.state();
  const targets: string[] = [];
  if (opts.config.natsUrl !== undefined) targets.push("nats");
  if (opts.config.webhookUrl !== undefined) targets.push("webhook");
  const breakers = state?.breakers ?? {};
  const warnings: string[] = [];
  for (const [target, s] of Object.entries(breakers)) {
    if (s !== "closed") warnings.push(`${target} circuit breaker ${s}`);
  }
  if (stats.failed > 0) warnings.push(`${stats.failed} event(s) parked as FAILED`);
  if (
    targets.length > 0 &&
    stats.oldestPendingAgeSeconds !== null &&
    stats.oldestPendingAgeSeconds > OUTBOX_OLDEST_WARN_SECONDS
  ) {
    warnings.push(`oldest pending event is ${Math.round(stats.oldestPendingAgeSeconds)} s old`);
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

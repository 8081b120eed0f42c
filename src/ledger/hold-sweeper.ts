// The hold sweeper in `serve`: every HOLD_SWEEP_SECONDS it cancels expired PENDING holds
// through the money path (one short transaction per hold; pb_post picks the next expired
// hold with FOR UPDATE SKIP LOCKED, so replicas sweeping at once never process one hold
// twice), then purges idempotency records older than IDEMPOTENCY_TTL_HOURS.
import type { Logger } from "pino";
import { systemScope } from "../context.ts";
import type { Sql } from "../db/client.ts";
import { purgeIdempotencyKeys } from "../http/idempotency.ts";
import type { Metrics } from "../observability/metrics.ts";
import { post } from "./postings.ts";

/** Holds expired per sweep at most; the rest wait for the next tick. */
export const MAX_EXPIRIES_PER_SWEEP = 1_000;

export type SweepResult = { expired: number; purgedKeys: number };

/** One sweep. Exported for tests and for an operator's manual run. */
export async function sweepOnce(
  sql: Sql,
  opts: { idempotencyTtlHours: number; metrics?: Metrics },
): Promise<SweepResult> {
  let expired = 0;
  while (expired < MAX_EXPIRIES_PER_SWEEP) {
    const out = await post(sql, systemScope(), { op: "expire" }, { metrics: opts.metrics });
    if (out.kind !== "posted") break;
    expired++;
  }
  const purgedKeys = await purgeIdempotencyKeys(sql, opts.idempotencyTtlHours);
  return { expired, purgedKeys };
}

export type HoldSweeper = { stop: () => Promise<void>; runNow: () => Promise<SweepResult | undefined> };

export function startHoldSweeper(deps: {
  sql: Sql;
  logger: Logger;
  metrics?: Metrics;
  sweepSeconds: number;
  idempotencyTtlHours: number;
}): HoldSweeper {
  let running: Promise<SweepResult | undefined> | undefined;
  let stopped = false;
  const tick = async (): Promise<SweepResult | undefined> => {
    try {
      const r = await sweepOnce(deps.sql, {
        idempotencyTtlHours: deps.idempotencyTtlHours,
        metrics: deps.metrics,
      });
      if (r.expired > 0 || r.purgedKeys > 0) deps.logger.info(r, "hold sweep");
      return r;
    } catch (err) {
      deps.logger.warn({ err }, "hold sweep failed");
      return undefined;
    }
  };
  const runNow = () => {
    running ??= tick().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) void runNow();
  }, deps.sweepSeconds * 1000);
  return {
    runNow,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

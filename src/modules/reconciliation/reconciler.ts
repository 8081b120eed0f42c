// Background reconciliation in `serve`: every RECONCILE_INTERVAL_SECONDS (0 = off), on ONE
// replica at a time (a transaction advisory lock; a replica that does not get it skips the
// round), with its own generous statement timeout. Exports the mismatch count of the last run.
import type { Logger } from "pino";
import type { Sql } from "../../db/client.ts";
import type { Metrics } from "../../observability/metrics.ts";
import { runReconciliation } from "./service.ts";

export type Reconciler = { stop: () => Promise<void>; runNow: () => Promise<void> };

export function startReconciler(deps: {
  sql: Sql;
  logger: Logger;
  metrics: Metrics;
  intervalSeconds: number;
}): Reconciler {
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      const report = await runReconciliation(deps.sql, { exclusive: true });
      if (report === undefined) return; // another replica holds the lock
      deps.metrics.reconciliationMismatches.set(report.mismatch_count);
      if (report.mismatch_count > 0) {
        deps.logger.error(
          { mismatches: report.mismatch_count, first: report.mismatches.slice(0, 5) },
          "reconciliation mismatch",
        );
      } else {
        deps.logger.debug({ wallets: report.wallets_checked }, "reconciliation clean");
      }
    } catch (err) {
      deps.logger.warn({ err }, "reconciliation run failed");
    }
  };
  const runNow = () => {
    running ??= tick().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer =
    deps.intervalSeconds > 0
      ? setInterval(() => {
          if (!stopped) void runNow();
        }, deps.intervalSeconds * 1000)
      : undefined;
  return {
    runNow,
    stop: async () => {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      await running;
    },
  };
}

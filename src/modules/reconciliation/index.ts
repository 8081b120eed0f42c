// GET /api/v1/admin/reconciliation: the invariant report of SPEC §2.4 (admin only).
import { Elysia, t } from "elysia";
import type { AppDeps } from "../../app.ts";
import { guard } from "../../http/auth.ts";
import { bearer } from "../../http/schemas.ts";
import { runReconciliation } from "./service.ts";

const ReportSchema = t.Object(
  {
    status: t.UnionEnum(["ok", "mismatch"]),
    checked_at: t.String({ format: "date-time" }),
    wallets_checked: t.Integer(),
    transactions_checked: t.Integer(),
    mismatches: t.Array(
      t.Object({
        kind: t.String(),
        wallet_id: t.Optional(t.String()),
        transaction_id: t.Optional(t.String()),
        expected: t.String(),
        actual: t.String(),
      }),
    ),
  },
  { title: "ReconciliationReport" },
);

export function reconciliationRoutes(deps: AppDeps) {
  return new Elysia({ prefix: "/api/v1/admin" }).get(
    "/reconciliation",
    async () => {
      const report = await runReconciliation(deps.sql);
      if (report === undefined) throw new Error("reconciliation: unexpected lock contention");
      deps.metrics.reconciliationMismatches.set(report.mismatch_count);
      const { mismatch_count: _count, ...body } = report;
      return body;
    },
    {
      transform: guard(deps.auth, ["admin"]),
      response: { 200: ReportSchema },
      detail: bearer("Ledger invariant report (admin)", ["reconciliation"], [401, 403]),
    },
  );
}

// Relay delivery checks (when the chaos run uses `paybridge relay` with a webhook sink):
// every outbox event delivered at least once despite relay kills, nothing delivered that is
// not in the outbox, and per aggregate the first deliveries follow the sequence.
import type postgres from "postgres";
import type { CheckResult } from "./invariants.ts";
import type { WebhookSink } from "./sink.ts";

export async function deliveryChecks(
  sql: postgres.Sql,
  sink: WebhookSink,
  drained: boolean,
): Promise<CheckResult[]> {
  const rows = await sql<{ id: string; status: string }[]>`SELECT id, status FROM outbox`;
  const ids = new Set(rows.map((r) => r.id));
  const seen = new Map<string, number>();
  const lastSeq = new Map<string, number>();
  const orderProblems: string[] = [];
  for (const d of sink.deliveries) {
    const n = seen.get(d.id) ?? 0;
    seen.set(d.id, n + 1);
    if (n > 0) continue; // a redelivery after a kill: allowed (at least once)
    const prev = lastSeq.get(d.aggregate) ?? 0;
    if (d.sequence !== prev + 1)
      orderProblems.push(`${d.aggregate}: seq ${d.sequence} first delivered after ${prev}`);
    lastSeq.set(d.aggregate, Math.max(prev, d.sequence));
  }
  const missing = rows.filter((r) => !seen.has(r.id)).map((r) => `${r.id} (${r.status})`);
  const unknown = [...seen.keys()].filter((id) => !ids.has(id));
  const duplicates = [...seen.values()].filter((n) => n > 1).length;
  const fmt = (name: string, problems: string[], ok: string): CheckResult =>
    problems.length === 0
      ? { name, ok: true, detail: ok }
      : { name, ok: false, detail: `${problems.length}: ${problems.slice(0, 5).join("; ")}` };
  return [
    fmt(
      "relay drained the outbox after the faults",
      drained ? [] : ["outbox still has unpublished rows"],
      "all PUBLISHED",
    ),
    fmt(
      "every outbox event delivered at least once",
      missing,
      `${rows.length} events, ${duplicates} redelivered after kills`,
    ),
    fmt("nothing delivered that is not in the outbox", unknown, "none"),
    fmt("first deliveries in sequence order per aggregate", orderProblems, "in order"),
    fmt("webhook signatures valid", sink.badSignatures > 0 ? [`${sink.badSignatures} bad`] : [], "all valid"),
  ];
}

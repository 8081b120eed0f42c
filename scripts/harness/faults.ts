// Fault injectors for the chaos run. Each one breaks something real — a process, the database
// server, connections — and brings it back, so the workload keeps going around it.
import type { PgCluster } from "./cluster.ts";
import { sleep } from "./net.ts";
import type { ManagedProcess } from "./processes.ts";
import type { Rng } from "./rng.ts";

export const FAULT_KINDS = ["serve-kill", "pg-restart", "pg-terminate", "relay-kill"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type FaultRecord = { kind: FaultKind; atSeconds: number; detail: string; downMs: number };

/** A killed process stays down this long at most before its restart (seeded). */
const MAX_DOWN_MS = 500;
const MID_BATCH_WAIT_MS = 3_000;
const MID_BATCH_POLL_MS = 20;

const RESTART_ATTEMPTS = 3;

/** A restart can lose a race for its port or time out on a loaded machine: try again. */
async function startWithRetries(p: ManagedProcess): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await p.start();
      return;
    } catch (err) {
      await p.kill();
      if (attempt >= RESTART_ATTEMPTS) throw err;
      await sleep(1000);
    }
  }
}

export type FaultTargets = { cluster: PgCluster; serve: ManagedProcess; relay?: ManagedProcess };

export async function inject(
  kind: FaultKind,
  t: FaultTargets,
  rng: Rng,
): Promise<{ detail: string; downMs: number }> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  switch (kind) {
    case "serve-kill": {
      const pid = t.serve.pid;
      await t.serve.kill();
      await sleep(rng.int(0, MAX_DOWN_MS));
      await startWithRetries(t.serve);
      return { detail: `SIGKILL serve pid ${pid}, restarted as ${t.serve.pid}`, downMs: took() };
    }
    case "pg-restart": {
      // Alternate a clean fast shutdown and a crash (immediate: WAL recovery on start).
      const mode = rng.chance(0.5) ? "immediate" : "fast";
      await t.cluster.restart(mode);
      return { detail: `pg_ctl restart -m ${mode}`, downMs: took() };
    }
    case "pg-terminate": {
      const n = await t.cluster.admin(async (sql) => {
        const [r] = await sql<{ n: number }[]>`
          SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE application_name = 'paybridge-serve' AND pid <> pg_backend_pid()`;
        return r?.n ?? 0;
      });
      return { detail: `pg_terminate_backend on ${n} serve connection(s)`, downMs: took() };
    }
    case "relay-kill": {
      if (t.relay === undefined) return { detail: "no relay running: skipped", downMs: 0 };
      const pid = t.relay.pid;
      // Wait (briefly) for the relay to be inside a batch — an open transaction holding its
      // claimed rows — so the kill lands mid-batch, not between batches.
      const deadline = Date.now() + MID_BATCH_WAIT_MS;
      let inBatch = false;
      let backlog = 0;
      while (!inBatch && Date.now() < deadline) {
        [inBatch, backlog] = await t.cluster.admin(async (sql) => {
          const [r] = await sql<{ open: number; pending: number }[]>`
            SELECT (SELECT count(*)::int FROM pg_stat_activity
                     WHERE application_name = 'paybridge-relay' AND xact_start IS NOT NULL) AS open,
                   (SELECT count(*)::int FROM outbox WHERE status = 'PENDING') AS pending`;
          return [(r?.open ?? 0) > 0, r?.pending ?? 0] as const;
        }, "paybridge");
        if (!inBatch) await sleep(MID_BATCH_POLL_MS);
      }
      await t.relay.kill();
      await sleep(rng.int(0, MAX_DOWN_MS));
      await startWithRetries(t.relay);
      return {
        detail: `SIGKILL relay pid ${pid} ${inBatch ? "inside a batch" : "between batches"}, ${backlog} events pending; restarted as ${t.relay.pid}`,
        downMs: took(),
      };
    }
    default: {
      const never: never = kind;
      throw new Error(`unknown fault ${String(never)}`);
    }
  }
}

/** The fault sequence for a run: `count` faults, every kind in turn, order shuffled by seed. */
export function faultPlan(count: number, kinds: readonly FaultKind[], rng: Rng): FaultKind[] {
  const plan: FaultKind[] = [];
  while (plan.length < count) {
    const round = [...kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [round[i], round[j]] = [round[j]!, round[i]!];
    }
    plan.push(...round);
  }
  return plan.slice(0, count);
}

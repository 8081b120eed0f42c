// The chaos bank test: a seeded workload through careful clients against the compiled binary
// while faults are injected, then the invariants. Used by scripts/chaos.ts (full run) and
// test/reliability/chaos.test.ts (30-second run).
import { type OpRecord, resolveUnknown, runOp, setupBank } from "./bank.ts";
import { CarefulClient, mintToken, newStats, ownerClients } from "./client.ts";
import { deliveryChecks } from "./delivery.ts";
import { createEnv, HARNESS_ADMIN_SUB, waitOutboxDrained } from "./env.ts";
import { type FaultKind, type FaultRecord, faultPlan, inject } from "./faults.ts";
import { acknowledgedChecks, type CheckResult, databaseChecks, reconciliationCheck } from "./invariants.ts";
import { sleep } from "./net.ts";
import { checks, kv, type Printer, section, table } from "./report.ts";
import { createRng } from "./rng.ts";
import { createWorkload } from "./workload.ts";

export type ChaosOptions = {
  seed: number;
  /** stop after this many workload ops ... */
  ops: number;
  /** ... or after this many seconds (0: no time limit) */
  durationSeconds: number;
  concurrency: number;
  users: number;
  faults: number;
  faultKinds: readonly FaultKind[];
  relay: boolean;
  /** per-request deadline of the careful client while faults go on */
  requestDeadlineMs: number;
  /** share (0..1) of first attempts whose response the client abandons after a few ms */
  lostResponseShare: number;
  print: Printer;
};

export type ChaosResult = {
  ok: boolean;
  seed: number;
  opsAttempted: number;
  requests: number;
  acknowledged: number;
  rejected: Record<string, number>;
  retried: number;
  resolvedAfterRun: number;
  faults: FaultRecord[];
  checks: CheckResult[];
  seconds: number;
  unexpectedServeExits: number;
};

const RESOLVE_DEADLINE_MS = 120_000;
const DRAIN_TIMEOUT_MS = 180_000;
const FAULT_POLL_MS = 100;
const MAX_LOG_LINES = 5;

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const print = o.print;
  const t0 = performance.now();
  const secs = () => (performance.now() - t0) / 1000;
  const env = await createEnv({ relay: o.relay, log: (l) => print(`[${secs().toFixed(1)}s] ${l}`) });
  try {
    const wl = createWorkload(o.seed, o.users);
    const stats = newStats();
    const client = new CarefulClient(
      env.serve.baseUrl,
      await mintToken(env.secret, HARNESS_ADMIN_SUB, "admin"),
      stats,
    );
    print(`[${secs().toFixed(1)}s] setup: ${o.users} users, ${wl.wallets.length} wallets`);
    const bank = await setupBank(client, wl);
    client.lostResponseShare = o.lostResponseShare;
    const owners = await ownerClients(
      env.serve.baseUrl,
      env.secret,
      bank.userIds,
      stats,
      o.lostResponseShare,
    );

    const records: OpRecord[] = [];
    let next = 0;
    let stop = false;
    const runStart = performance.now();
    const progress = () =>
      Math.max(
        next / o.ops,
        o.durationSeconds > 0 ? (performance.now() - runStart) / 1000 / o.durationSeconds : 0,
      );
    const worker = async () => {
      while (!stop) {
        const i = next++;
        if (i >= o.ops) return;
        records.push(await runOp(client, wl, bank, wl.opAt(i), o.requestDeadlineMs, owners));
        if (o.durationSeconds > 0 && (performance.now() - runStart) / 1000 >= o.durationSeconds) return;
      }
    };

    const rng = createRng(o.seed ^ 0x5eed);
    // Without a relay there is nothing to kill mid-batch: its turns go to the other kinds.
    const kinds = o.relay ? o.faultKinds : o.faultKinds.filter((k) => k !== "relay-kill");
    const plan = faultPlan(o.faults, kinds, rng);
    const faults: FaultRecord[] = [];
    let unexpectedServeExits = 0;
    let faultError: string | undefined;
    const faultLoop = async () => {
      for (const [k, kind] of plan.entries()) {
        const at = (k + 1) / (plan.length + 1);
        while (progress() < at && !stop) {
          if (!env.serve.proc.alive()) {
            unexpectedServeExits++;
            print(`[${secs().toFixed(1)}s] serve exited on its own: restarting`);
            await env.serve.proc.start();
          }
          await sleep(FAULT_POLL_MS);
        }
        if (stop) return;
        const atSeconds = secs();
        let r: Awaited<ReturnType<typeof inject>>;
        try {
          r = await inject(kind, { cluster: env.cluster, serve: env.serve.proc, relay: env.relay }, rng);
        } catch (err) {
          // Reported as a failed check; the rest of the plan is dropped, the workload goes on.
          faultError = `${kind} at ${atSeconds.toFixed(1)} s: ${(err as Error).message}`;
          print(`[${atSeconds.toFixed(1)}s] fault injection failed: ${faultError}`);
          return;
        }
        faults.push({ kind, atSeconds, ...r });
        print(
          `[${atSeconds.toFixed(1)}s] fault ${faults.length}/${plan.length} at op ${next}: ${kind}: ${r.detail} (${r.downMs} ms)`,
        );
      }
    };
    const ticker = setInterval(() => {
      print(
        `[${secs().toFixed(1)}s] ops ${Math.min(next, o.ops)}, requests ${stats.requests}, retried ${stats.retried}, faults ${faults.length}`,
      );
    }, 15_000);
    const faultsDone = faultLoop();
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    stop = true;
    await faultsDone;
    clearInterval(ticker);
    const opsAttempted = records.length;
    if (!env.serve.proc.alive()) {
      unexpectedServeExits++;
      await env.serve.proc.start();
    }
    print(`[${secs().toFixed(1)}s] workload done (${opsAttempted} ops); resolving unanswered requests`);
    const resolvedAfterRun = await resolveUnknown(records, RESOLVE_DEADLINE_MS);

    let drained = true;
    if (env.relay !== undefined) {
      try {
        await waitOutboxDrained(env.sql, DRAIN_TIMEOUT_MS);
      } catch {
        drained = false;
      }
    }
    print(`[${secs().toFixed(1)}s] checking invariants`);
    const results: CheckResult[] = [
      ...(await databaseChecks(env.sql)),
      ...(await acknowledgedChecks(env.sql, wl.wallets, bank, records)),
      await reconciliationCheck(client),
    ];
    if (env.relay !== undefined && env.sink !== undefined)
      results.push(...(await deliveryChecks(env.sql, env.sink, drained)));
    results.push({
      name: "every planned fault was injected",
      ok: faults.length === plan.length && faultError === undefined,
      detail: faultError ?? `${faults.length} of ${plan.length}`,
    });
    results.push({
      name: "serve stayed up except when killed",
      ok: unexpectedServeExits === 0,
      detail: `${unexpectedServeExits} unexpected exit(s)`,
    });
    results.push({
      name: "no 5xx other than 503 (a fault's own broken connection aside)",
      ok: stats.unexpected5xx.length === 0,
      detail: stats.unexpected5xx.length === 0 ? "none" : JSON.stringify(stats.unexpected5xx.slice(0, 3)),
    });

    const all = [...bank.funding, ...records].flatMap((r) => r.sent);
    const rejected: Record<string, number> = {};
    for (const s of all) {
      if (s.outcome.kind !== "rejected") continue;
      const code = `${s.outcome.answer.status} ${(s.outcome.answer.body as { code?: string })?.code ?? "?"}`;
      rejected[code] = (rejected[code] ?? 0) + 1;
    }
    const result: ChaosResult = {
      ok: results.every((r) => r.ok),
      seed: o.seed,
      opsAttempted,
      requests: stats.requests,
      acknowledged: all.filter((s) => s.outcome.kind === "ok").length,
      rejected,
      retried: stats.retried,
      resolvedAfterRun,
      faults,
      checks: results,
      seconds: secs(),
      unexpectedServeExits,
    };
    printChaosReport(print, o, result, stats);
    if (!result.ok) {
      // The error-level lines say why (a 500's request_id is in its problem body).
      const log = await Bun.file(env.serve.proc.logPath())
        .text()
        .catch(() => "");
      const errors = log.split("\n").filter((l) => /"level":"(error|fatal)"/.test(l));
      section(print, `serve log: ${errors.length} error line(s), the first ${MAX_LOG_LINES}`);
      for (const l of errors.slice(0, MAX_LOG_LINES)) print(`  ${l.slice(0, 1500)}`);
    }
    return result;
  } finally {
    await env.teardown();
  }
}

function printChaosReport(
  print: Printer,
  o: ChaosOptions,
  r: ChaosResult,
  stats: ReturnType<typeof newStats>,
): void {
  section(print, "chaos report");
  kv(print, [
    ["seed", `${r.seed}   (replay: CHAOS_SEED=${r.seed} make chaos)`],
    ["duration", `${r.seconds.toFixed(1)} s`],
    ["concurrency", o.concurrency],
    ["wallets", `${o.users * 4} (${o.users} users x USD EUR JPY BTC), uniform and hot-wallet phases`],
    ["operations attempted", r.opsAttempted],
    ["HTTP money requests", r.requests],
    ["acknowledged (2xx)", r.acknowledged],
    ["rejected (definitive 4xx)", Object.values(r.rejected).reduce((a, b) => a + b, 0)],
    ["requests retried", r.retried],
    ["attempts in total", stats.attempts],
    ["timeouts / connection errors", `${stats.timeouts} / ${stats.connErrors}`],
    [
      "responses abandoned by the client",
      `${stats.abandoned} (${Math.round(o.lostResponseShare * 100)}% of first attempts, then retried)`,
    ],
    ["503 answers / other 5xx", `${stats.status503} / ${stats.status5xx}`],
    ["409 key in use (retried)", stats.inUse409],
    ["idempotent replays seen", stats.replays],
    ["answered only after the run", r.resolvedAfterRun],
  ]);
  if (Object.keys(r.rejected).length > 0) {
    section(print, "rejections by code");
    table(
      print,
      ["code", "count"],
      Object.entries(r.rejected).sort((a, b) => b[1] - a[1]),
    );
  }
  section(print, `faults injected: ${r.faults.length}`);
  table(
    print,
    ["#", "at s", "kind", "down ms", "detail"],
    r.faults.map((f, i) => [String(i + 1), f.atSeconds.toFixed(1), f.kind, f.downMs, f.detail]),
  );
  section(print, "invariants");
  checks(print, r.checks);
  print("");
  print(r.ok ? `CHAOS OK (seed ${r.seed})` : `CHAOS FAILED: replay with CHAOS_SEED=${r.seed} make chaos`);
}

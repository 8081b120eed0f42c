// The short chaos run of `make test` (issue 9): 30 seconds of the seeded bank workload against
// the compiled binary on a throw-away PostgreSQL cluster, with one SIGKILL + restart of serve
// and one pg_terminate_backend of serve's connections, then every invariant. The full run is
// `make chaos` (scripts/chaos.ts).
import { expect, test } from "bun:test";
import { runChaos } from "../../scripts/harness/chaos-run.ts";

/** Fixed so a failure replays: CHAOS_SEED=<seed> make chaos runs the same workload. */
const SEED = 20_261_129;
const RUN_SECONDS = 30;
/** initdb, a possible build, 30 s of load and the checks, on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 240_000;

test(
  "30 s chaos: a serve SIGKILL and a connection cut lose no money and apply every retry once",
  async () => {
    const lines: string[] = [];
    const r = await runChaos({
      seed: SEED,
      ops: 1_000_000,
      durationSeconds: RUN_SECONDS,
      concurrency: 8,
      users: 6,
      faults: 2,
      faultKinds: ["serve-kill", "pg-terminate"],
      relay: false,
      requestDeadlineMs: 60_000,
      lostResponseShare: 0.03,
      print: (l) => lines.push(l),
    });
    if (!r.ok) console.log(lines.join("\n"));
    expect(r.faults.map((f) => f.kind).sort()).toEqual(["pg-terminate", "serve-kill"]);
    expect(r.opsAttempted).toBeGreaterThan(0);
    expect(r.acknowledged).toBeGreaterThan(0);
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.ok).toBe(true);
  },
  TEST_TIMEOUT_MS,
);

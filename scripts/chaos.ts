// `make chaos`: the full fault-injection bank test (SPEC §2.3–2.5 under fire, issue 9).
// Knobs (flag or env): --seed / CHAOS_SEED, --ops / CHAOS_OPS (50000), --duration / CHAOS_DURATION
// seconds (0 = until ops are done), --concurrency / CHAOS_CONCURRENCY (16), --users / CHAOS_USERS
// (25, four wallets each), --faults / CHAOS_FAULTS (12), --fault-kinds / CHAOS_FAULT_KINDS
// (serve-kill,pg-restart,pg-terminate,relay-kill), --relay / CHAOS_RELAY (true),
// --lost-response-percent / CHAOS_LOST_RESPONSE_PERCENT (3: first attempts whose answer the client abandons).
// Exit 0 when every invariant holds, 1 on any violation (the seed to replay is printed), 2 on bad knobs.
import { runChaos } from "./harness/chaos-run.ts";
import { FAULT_KINDS } from "./harness/faults.ts";
import { Knobs } from "./harness/knobs.ts";
import { stdoutPrinter } from "./harness/report.ts";
import { randomSeed } from "./harness/rng.ts";

let options: Parameters<typeof runChaos>[0];
try {
  const k = new Knobs("CHAOS");
  options = {
    seed: k.int("seed", randomSeed()),
    ops: k.int("ops", 50_000),
    durationSeconds: k.int("duration", 0),
    concurrency: k.int("concurrency", 16),
    users: k.int("users", 25),
    faults: k.int("faults", 12),
    faultKinds: k.list("fault-kinds", FAULT_KINDS, FAULT_KINDS),
    relay: k.bool("relay", true),
    requestDeadlineMs: k.int("request-deadline-ms", 60_000),
    lostResponseShare: Math.min(100, k.int("lost-response-percent", 3)) / 100,
    print: stdoutPrinter,
  };
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).message}\n`);
  process.exit(2);
}
stdoutPrinter(
  `chaos: seed ${options.seed}, ${options.ops} ops, ${options.faults} faults, concurrency ${options.concurrency}`,
);
const result = await runChaos(options);
process.exit(result.ok ? 0 : 1);

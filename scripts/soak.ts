// `make soak`: mixed load for SOAK_SECONDS (600) with RSS, event-loop lag, pool usage and p99
// latency sampled every SOAK_SAMPLE_SECONDS (10); reports whether memory and latency stay flat.
// Knobs (flag or env): --seconds / SOAK_SECONDS, --sample-seconds, --concurrency (8), --users (25),
// --read-percent (30), --seed. Exit 0 when flat and the invariants hold, 1 otherwise, 2 on bad knobs.
import { Knobs } from "./harness/knobs.ts";
import { stdoutPrinter } from "./harness/report.ts";
import { randomSeed } from "./harness/rng.ts";
import { runSoak } from "./harness/soak-run.ts";

let options: Parameters<typeof runSoak>[0];
try {
  const k = new Knobs("SOAK");
  options = {
    seed: k.int("seed", randomSeed()),
    seconds: k.int("seconds", 600),
    sampleSeconds: Math.max(1, k.int("sample-seconds", 10)),
    concurrency: k.int("concurrency", 8),
    users: k.int("users", 25),
    readShare: Math.min(100, k.int("read-percent", 30)) / 100,
    print: stdoutPrinter,
  };
} catch (err) {
  process.stderr.write(`soak: ${(err as Error).message}\n`);
  process.exit(2);
}
const result = await runSoak(options);
process.exit(result.ok ? 0 : 1);

// `make fuzz`: property-based request fuzzing of every /api route from /openapi.json.
// Knobs (flag or env): --seed / FUZZ_SEED, --requests / FUZZ_REQUESTS (20000), --batch / FUZZ_BATCH (10).
// Exit 0 when no property failed, 1 otherwise (the seed is printed), 2 on bad knobs.
import { runFuzz } from "./harness/fuzz-run.ts";
import { Knobs } from "./harness/knobs.ts";
import { stdoutPrinter } from "./harness/report.ts";
import { randomSeed } from "./harness/rng.ts";

let options: Parameters<typeof runFuzz>[0];
try {
  const k = new Knobs("FUZZ");
  options = {
    seed: k.int("seed", randomSeed()),
    requests: k.int("requests", 20_000),
    batch: k.int("batch", 10),
    print: stdoutPrinter,
  };
} catch (err) {
  process.stderr.write(`fuzz: ${(err as Error).message}\n`);
  process.exit(2);
}
const result = await runFuzz(options);
process.exit(result.ok ? 0 : 1);

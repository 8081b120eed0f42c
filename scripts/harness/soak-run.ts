// The soak: mixed load (the seeded money workload plus reads) for a configured duration,
// sampling every SAMPLE_SECONDS the serve process's RSS (/proc/<pid>/status), event-loop lag
// and pool usage (/metrics) and the client-side p99 latency; then whether memory and latency
// stayed flat (first third vs last third) and the invariants still hold.
import { type OpRecord, runOp, setupBank } from "./bank.ts";
import { CarefulClient, mintToken, newStats, ownerClients } from "./client.ts";
import { createEnv, HARNESS_ADMIN_SUB } from "./env.ts";
import { acknowledgedChecks, type CheckResult, databaseChecks, reconciliationCheck } from "./invariants.ts";
import { sleep } from "./net.ts";
import { rssKiB } from "./processes.ts";
import { checks, kv, type Printer, percentile, section, table } from "./report.ts";
import { createRng } from "./rng.ts";
import { createWorkload } from "./workload.ts";

export type SoakOptions = {
  seed: number;
  seconds: number;
  sampleSeconds: number;
  concurrency: number;
  users: number;
  readShare: number;
  print: Printer;
};
export type Sample = {
  at: number;
  rssMiB: number;
  lagP99Ms: number;
  poolInUse: number;
  poolMax: number;
  p99Ms: number;
  reqPerSec: number;
};
export type SoakResult = {
  ok: boolean;
  flat: { memory: boolean; latency: boolean; detail: string };
  samples: Sample[];
  checks: CheckResult[];
};

/** Flatness thresholds: last third vs first third. */
const MAX_RSS_GROWTH_RATIO = 1.25;
const MAX_RSS_GROWTH_MIB = 32;
const MAX_P99_RATIO = 2;
const OP_DEADLINE_MS = 60_000;

function metric(text: string, name: string, labels = ""): number {
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}${labels} `) || (labels === "" && l.startsWith(`${name} `)));
  return line === undefined ? Number.NaN : Number(line.split(" ").at(-1));
}

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

export function flatness(samples: Sample[]): SoakResult["flat"] {
  const third = Math.max(1, Math.floor(samples.length / 3));
  const first = samples.slice(0, third);
  const last = samples.slice(-third);
  const rss0 = mean(first.map((s) => s.rssMiB));
  const rss1 = mean(last.map((s) => s.rssMiB));
  const p0 = mean(first.map((s) => s.p99Ms));
  const p1 = mean(last.map((s) => s.p99Ms));
  const memory = rss1 <= rss0 * MAX_RSS_GROWTH_RATIO || rss1 - rss0 <= MAX_RSS_GROWTH_MIB;
  const latency = p1 <= Math.max(p0 * MAX_P99_RATIO, p0 + 50);
  return {
    memory,
    latency,
    detail: `RSS ${rss0.toFixed(1)} → ${rss1.toFixed(1)} MiB, p99 ${p0.toFixed(1)} → ${p1.toFixed(1)} ms (first vs last third, ${third} samples each)`,
  };
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const print = o.print;
  const env = await createEnv({ serveEnv: { HOLD_SWEEP_SECONDS: "30" }, log: (l) => print(`[soak] ${l}`) });
  try {
    const wl = createWorkload(o.seed, o.users);
    const client = new CarefulClient(
      env.serve.baseUrl,
      await mintToken(env.secret, HARNESS_ADMIN_SUB, "admin"),
      newStats(),
    );
    const bank = await setupBank(client, wl);
    const owners = await ownerClients(env.serve.baseUrl, env.secret, bank.userIds, client.stats, 0);
    const records: OpRecord[] = [];
    let latencies: number[] = [];
    let done = 0;
    let next = 0;
    let stop = false;
    const readRng = createRng(o.seed ^ 0x50a4);
    const worker = async () => {
      while (!stop) {
        const t = performance.now();
        if (readRng.chance(o.readShare)) {
          const w = bank.walletIds[readRng.int(0, bank.walletIds.length - 1)];
          const path = readRng.chance(0.5)
            ? `/api/v1/wallets/${w}`
            : `/api/v1/wallets/${w}/transactions?limit=20`;
          await client.send("GET", path, undefined, undefined, OP_DEADLINE_MS);
        } else {
          records.push(await runOp(client, wl, bank, wl.opAt(next++), OP_DEADLINE_MS, owners));
        }
        latencies.push(performance.now() - t);
        done++;
      }
    };
    const samples: Sample[] = [];
    const t0 = performance.now();
    const sampler = async () => {
      let lastDone = 0;
      while (!stop) {
        await sleep(o.sampleSeconds * 1000);
        if (stop) break; // a window cut short by the stop would skew the last third
        const text = await fetch(`${env.serve.baseUrl}/metrics`)
          .then((r) => r.text())
          .catch(() => "");
        const window = latencies;
        latencies = [];
        const s: Sample = {
          at: (performance.now() - t0) / 1000,
          rssMiB: ((await rssKiB(env.serve.proc.pid ?? 0)) ?? 0) / 1024,
          lagP99Ms: metric(text, "nodejs_eventloop_lag_p99_seconds") * 1000,
          poolInUse: metric(text, "paybridge_db_connections", '{state="in_use"}'),
          poolMax: metric(text, "paybridge_db_connections", '{state="max"}'),
          p99Ms: percentile(window, 99),
          reqPerSec: (done - lastDone) / o.sampleSeconds,
        };
        lastDone = done;
        samples.push(s);
        print(
          `[soak] ${s.at.toFixed(0)}s rss ${s.rssMiB.toFixed(1)} MiB, lag p99 ${s.lagP99Ms.toFixed(1)} ms, pool ${s.poolInUse}/${s.poolMax}, p99 ${s.p99Ms.toFixed(1)} ms, ${s.reqPerSec.toFixed(0)} req/s`,
        );
      }
    };
    const samplerDone = sampler();
    const workers = Promise.all(Array.from({ length: o.concurrency }, worker));
    await sleep(o.seconds * 1000);
    stop = true;
    await workers;
    await samplerDone;
    const results: CheckResult[] = [
      ...(await databaseChecks(env.sql)),
      ...(await acknowledgedChecks(env.sql, wl.wallets, bank, records)),
      await reconciliationCheck(client),
      {
        name: "serve stayed up",
        ok: env.serve.proc.alive() && env.serve.proc.starts === 1,
        detail: `started ${env.serve.proc.starts} time(s)`,
      },
    ];
    const flat = flatness(samples);
    const ok = flat.memory && flat.latency && results.every((r) => r.ok);
    section(print, "soak report");
    kv(print, [
      ["seed", o.seed],
      ["duration", `${o.seconds} s, sampled every ${o.sampleSeconds} s`],
      ["concurrency", `${o.concurrency} (${Math.round(o.readShare * 100)}% reads)`],
      ["requests", done],
      ["money operations", records.length],
    ]);
    section(print, "samples");
    table(
      print,
      ["at s", "RSS MiB", "loop lag p99 ms", "pool in use/max", "p99 ms", "req/s"],
      samples.map((s) => [
        s.at.toFixed(0),
        s.rssMiB.toFixed(1),
        s.lagP99Ms.toFixed(1),
        `${s.poolInUse}/${s.poolMax}`,
        s.p99Ms.toFixed(1),
        s.reqPerSec.toFixed(0),
      ]),
    );
    section(print, "flatness");
    print(
      `  memory ${flat.memory ? "flat" : "GROWING"}, latency ${flat.latency ? "flat" : "GROWING"}: ${flat.detail}`,
    );
    section(print, "invariants after the soak");
    checks(print, results);
    print("");
    print(ok ? "SOAK OK" : "SOAK FAILED");
    return { ok, flat, samples, checks: results };
  } finally {
    await env.teardown();
  }
}

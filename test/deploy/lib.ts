// Shared helpers for the deployment-artifact tests: repository paths, YAML loading, and the
// facts the artifacts are checked against (config variable names, exported metric names,
// probe routes), derived from the source so a rename breaks these tests.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

export const REPO = resolve(import.meta.dir, "../..");
export const repoPath = (...parts: string[]) => join(REPO, ...parts);
export const readText = (rel: string) => readFileSync(repoPath(rel), "utf8");

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Every non-empty YAML document of a file; a syntax error fails loudly with the file name. */
export function readYamlDocs(file: string): JsonObject[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const out: JsonObject[] = [];
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    if (!isObject(v)) throw new Error(`${file}: a document is not a mapping`);
    out.push(v);
  }
  return out;
}

export function readYaml(file: string): JsonObject {
  const docs = readYamlDocs(file);
  if (docs.length !== 1) throw new Error(`${file}: expected one YAML document, found ${docs.length}`);
  return docs[0]!;
}

export function listFiles(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, suffix));
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out.sort();
}

/** Environment variable names src/config.ts reads (every `r.<reader>("NAME"...)` call). */
export function configVarNames(): Set<string> {
  const src = readText("src/config.ts");
  const names = new Set<string>();
  for (const m of src.matchAll(/\br\.(?:raw|str|int|optInt|oneOf|bool|url|list)\(\s*"([A-Z][A-Z0-9_]*)"/g)) {
    names.add(m[1]!);
  }
  if (names.size < 20)
    throw new Error(`only ${names.size} variables found in src/config.ts: parser out of date`);
  return names;
}

/**
 * SPEC §5.2 metric names (the contract with dashboards and alerts). Kept here so the tests run
 * from a clone without ../shared; when the spec is beside the repository a test checks this
 * list against it.
 */
export const SPEC_METRICS = [
  "paybridge_http_requests_total",
  "paybridge_http_request_duration_seconds",
  "paybridge_http_requests_in_flight",
  "paybridge_http_response_size_bytes",
  "paybridge_business_transactions_total",
  "paybridge_business_transaction_amount",
  "paybridge_business_wallets_total",
  "paybridge_business_users_total",
  "paybridge_db_query_duration_seconds",
  "paybridge_db_connections",
  "paybridge_db_errors_total",
  "paybridge_build_info",
  "paybridge_db_up",
  "paybridge_schema_version",
  "paybridge_schema_expected_version",
  "paybridge_outbox_pending_events",
  "paybridge_outbox_oldest_pending_age_seconds",
  "paybridge_outbox_published_total",
  "paybridge_outbox_failed_total",
  "paybridge_breaker_state",
  "paybridge_idempotent_replays_total",
  "paybridge_rate_limited_total",
  "paybridge_reconciliation_mismatches",
] as const;

/** prom-client default process metrics PayBridge keeps (SPEC §5.2 "plus prom-client's default process metrics"). */
export const PROCESS_METRICS = [
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_heap_bytes",
  "process_open_fds",
  "process_max_fds",
] as const;

/** Series produced by Prometheus itself or kube-state-metrics, allowed in alert rules only. */
export const EXTERNAL_METRICS = [
  "up",
  "kube_pod_container_status_restarts_total",
  "kube_pod_init_container_status_restarts_total",
] as const;

export function shippedSpecPath(): string | undefined {
  const p = resolve(REPO, "../shared/SPEC.md");
  return existsSync(p) ? p : undefined;
}

/** Metric names declared in src/observability/*.ts (name: "paybridge_..."). */
export function sourceMetricNames(): Set<string> {
  const dir = repoPath("src/observability");
  const names = new Set<string>();
  for (const f of listFiles(dir, ".ts")) {
    for (const m of readFileSync(f, "utf8").matchAll(/\bname:\s*"(paybridge_[a-z0-9_]+)"/g)) names.add(m[1]!);
  }
  return names;
}

/** What a PayBridge /metrics page may contain: source + SPEC §5.2 + process_* names. */
export function exportedMetricNames(): Set<string> {
  return new Set<string>([...sourceMetricNames(), ...SPEC_METRICS, ...PROCESS_METRICS]);
}

/** Whether a series name (possibly a histogram's _bucket/_sum/_count) belongs to a known metric. */
export function isKnownSeries(series: string, known: ReadonlySet<string>): boolean {
  if (known.has(series)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  return m !== null && known.has(m[1]!);
}

export const SPEC_PROBE_PATHS = ["/live", "/health", "/ready", "/health/detailed"] as const;

/**
 * Probe routes the app really serves: string literals of the SPEC §5.1 routes found in src/.
 * While the health module has not landed (no "/ready" anywhere in src/) this falls back to
 * the SPEC list and says so, so the check tightens by itself once the code exists.
 */
export function servedProbePaths(): { paths: Set<string>; fromSource: boolean } {
  const found = new Set<string>();
  for (const f of listFiles(repoPath("src"), ".ts")) {
    const text = readFileSync(f, "utf8");
    for (const p of SPEC_PROBE_PATHS) if (text.includes(`"${p}"`) || text.includes(`'${p}'`)) found.add(p);
  }
  if (found.has("/ready")) return { paths: found, fromSource: true };
  return { paths: new Set(SPEC_PROBE_PATHS), fromSource: false };
}

/** promtool from PATH or Debian's location; undefined when absent (`make tools` installs it). */
export function promtoolPath(): string | undefined {
  const fromPath = Bun.which("promtool");
  if (fromPath) return fromPath;
  return existsSync("/usr/bin/promtool") ? "/usr/bin/promtool" : undefined;
}

export function run(cmd: string[], cwd = REPO): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: `${p.stdout.toString()}${p.stderr.toString()}` };
}

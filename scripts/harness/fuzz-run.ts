// The fuzzer: requests generated from the served OpenAPI document (fuzz-gen.ts) against the
// compiled binary. Properties: no 5xx; every 4xx is application/problem+json whose `status`
// matches; the server stays up; and nothing changes in the database for a batch of requests
// that were all rejected (row counts + checksums; idempotency records excepted: stored
// rejections are written by design, SPEC §3.1).
import fc from "fast-check";
import type postgres from "postgres";
import { mintToken } from "./client.ts";
import { createEnv, HARNESS_ADMIN_SUB } from "./env.ts";
import { type FuzzRequest, operationsOf, type Pools, requestArb } from "./fuzz-gen.ts";
import { kv, type Printer, section, table } from "./report.ts";

export type FuzzOptions = { seed: number; requests: number; batch: number; print: Printer };
export type FuzzFailure = { request: string; shape: string; problem: string };
export type FuzzResult = {
  ok: boolean;
  seed: number;
  sent: number;
  perRoute: Map<string, Map<string, number>>;
  failures: FuzzFailure[];
  batchesCompared: number;
  seconds: number;
};

const REQUEST_TIMEOUT_MS = 15_000;
const LIST_LIMIT_MAX = 100;
const EVENTS_LIMIT_MAX = 1000;
const MAX_FAILURES_PRINTED = 20;

/** Counts and checksums of everything a request could change (idempotency_keys aside). */
async function snapshot(sql: postgres.Sql): Promise<string> {
  const [r] = await sql`
    SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM wallets) AS wallets,
           (SELECT count(*) FROM transactions) AS transactions, (SELECT count(*) FROM ledger_entries) AS entries,
           (SELECT count(*) FROM outbox) AS outbox,
           (SELECT md5(coalesce(string_agg(concat_ws('|', id, email, full_name, kyc_status, kyc_reason, updated_at), ',' ORDER BY id), '')) FROM users) AS u,
           (SELECT md5(coalesce(string_agg(concat_ws('|', id, status, available_balance, pending_balance, daily_limit, monthly_limit, version, updated_at), ',' ORDER BY id), '')) FROM wallets) AS w,
           (SELECT md5(coalesce(string_agg(concat_ws('|', id, status, captured_amount, retry_count, updated_at), ',' ORDER BY id), '')) FROM transactions) AS t`;
  return JSON.stringify(r);
}

async function seedData(
  admin: Awaited<ReturnType<typeof createEnv>>["admin"],
): Promise<Omit<Pools, "tokens">> {
  const must = async (method: string, path: string, body?: unknown, key?: string) => {
    const o = await admin.send(method, path, body, key, 60_000);
    if (o.kind !== "ok") throw new Error(`fuzz seed ${method} ${path}: ${JSON.stringify(o).slice(0, 300)}`);
    return o.answer.body as Record<string, unknown>;
  };
  const userIds: string[] = [];
  const walletIds: string[] = [];
  const txIds: string[] = [];
  const keys: string[] = [];
  for (const [n, currencies] of [
    ["owner", ["USD", "EUR"]],
    ["other", ["USD"]],
  ] as const) {
    const u = await must("POST", "/api/v1/users", {
      email: `${n}-${Date.now()}@fuzz.example`,
      full_name: `Fuzz ${n}`,
    });
    const id = u.id as string;
    userIds.push(id);
    await must("POST", `/api/v1/users/${id}/kyc/start`);
    await must("POST", `/api/v1/users/${id}/kyc`, { approved: true });
    for (const currency of currencies) {
      const w = await must("POST", "/api/v1/wallets", { currency, user_id: id });
      walletIds.push(w.id as string);
      const key = `fuzz-seed-${walletIds.length}`;
      const c = await must(
        "POST",
        `/api/v1/wallets/${w.id}/credit`,
        { amount: "1000.00", description: "seed" },
        key,
      );
      keys.push(key);
      txIds.push((c.transaction as { id: string }).id);
    }
  }
  const h = await must(
    "POST",
    `/api/v1/wallets/${walletIds[0]}/holds`,
    { amount: "10.00", description: "seed hold" },
    "fuzz-seed-hold",
  );
  keys.push("fuzz-seed-hold");
  txIds.push((h.transaction as { id: string }).id);
  // an unverified user too (its id reaches the KYC routes in other states)
  userIds.push(
    (await must("POST", "/api/v1/users", { email: `plain-${Date.now()}@fuzz.example`, full_name: "Plain" }))
      .id as string,
  );
  // the owner's user, its two wallets, their deposits and its hold (see the loop above)
  const ownerIds = [userIds[0]!, walletIds[0]!, walletIds[1]!, txIds[0]!, txIds[1]!, txIds[3]!];
  return { userIds, walletIds, txIds, keys, ownerIds };
}

export function checkResponse(
  req: FuzzRequest,
  status: number,
  headers: Headers,
  text: string,
  ownerIds: string[],
): string | undefined {
  const contentType = headers.get("content-type") ?? "";
  if (status >= 500) return `HTTP ${status}: ${text.slice(0, 200)}`;
  // SPEC §3.1: the request id is echoed on every response, errors included.
  if (!headers.has("x-request-id")) return `HTTP ${status} without X-Request-ID`;
  if (status === 405 && !headers.has("allow")) return "HTTP 405 without an Allow header";
  // SPEC §3.1: a user acting on another user's resource gets 404, never its data.
  if (status < 300 && req.who === "other user") {
    const path = decodeURIComponent(req.path.split("?")[0]!).toLowerCase();
    const leaked = ownerIds.find((id) => path.includes(id));
    if (leaked !== undefined) return `HTTP ${status}: another user reached the owner's ${leaked}`;
  }
  // SPEC §3.1: a `limit` outside 1–100 (1–1000 for /events) is refused, never served.
  if (status < 300 && req.op.params.some((p) => p.in === "query" && p.name === "limit")) {
    const limit = new URL(req.path, "http://x").searchParams.get("limit");
    const max = req.op.template.endsWith("/events") ? EVENTS_LIMIT_MAX : LIST_LIMIT_MAX;
    const n = Number(limit);
    if (limit !== null && !(limit.trim() !== "" && Number.isInteger(n) && n >= 1 && n <= max)) {
      return `HTTP ${status} for limit=${limit} (must be 1–${max})`;
    }
  }
  // A documented success answers with (one of) its documented media types.
  const documented = status < 300 ? req.op.responseTypes[String(status)] : undefined;
  if (documented !== undefined && documented.length > 0 && req.method === req.op.method) {
    const mediaType = contentType.split(";")[0]!.trim();
    if (!documented.includes(mediaType)) {
      return `HTTP ${status} with content-type "${contentType}", documented: ${documented.join(", ")}`;
    }
  }
  if (status >= 400) {
    if (!contentType.startsWith("application/problem+json"))
      return `HTTP ${status} with content-type "${contentType}"`;
    // Bun's fetch drops the body of HEAD and TRACE answers (curl shows it is there).
    if (req.method === "HEAD" || req.method === "TRACE") return undefined;
    let body: { status?: number; code?: string; title?: string };
    try {
      body = JSON.parse(text);
    } catch {
      return `HTTP ${status}: problem body is not JSON: ${text.slice(0, 100)}`;
    }
    if (body.status !== status) return `HTTP ${status}: problem.status is ${body.status}`;
    if (typeof body.code !== "string" || !/^[A-Z_]+$/.test(body.code))
      return `HTTP ${status}: problem without a code`;
    if (/at \S+ \(|SELECT |postgres:\/\/|ECONNREFUSED/.test(text))
      return `HTTP ${status}: internal detail leaked: ${text.slice(0, 200)}`;
  }
  return undefined;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const print = o.print;
  const t0 = performance.now();
  const env = await createEnv({
    serveEnv: { HOLD_SWEEP_SECONDS: "86400" },
    log: (l) => print(`[fuzz] ${l}`),
  });
  try {
    const pools: Pools = {
      ...(await seedData(env.admin)),
      tokens: {
        admin: await mintToken(env.secret, HARNESS_ADMIN_SUB, "admin"),
        owner: "",
        other: "",
        expired: await mintToken(env.secret, HARNESS_ADMIN_SUB, "admin", -3600),
      },
    };
    pools.tokens.owner = await mintToken(env.secret, pools.userIds[0]!, "user");
    pools.tokens.other = await mintToken(env.secret, pools.userIds[1]!, "user");
    const doc = (await env.admin.once("GET", "/openapi.json")).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const ops = operationsOf(doc);
    print(`[fuzz] ${ops.length} operations from /openapi.json; seed ${o.seed}; ${o.requests} requests`);
    const arb = fc.oneof(...ops.map((op) => requestArb(op, pools)));

    const perRoute = new Map<string, Map<string, number>>();
    const failures: FuzzFailure[] = [];
    let batchesCompared = 0;
    let sent = 0;
    for (let start = 0; start < o.requests; start += o.batch) {
      // Generated batch by batch (seed + offset): a full run holds no 20,000 bodies at once.
      const batch = fc.sample(arb, { seed: o.seed + start, numRuns: Math.min(o.batch, o.requests - start) });
      sent += batch.length;
      const before = await snapshot(env.sql);
      let changedSomething = false;
      for (const req of batch) {
        const route = `${req.op.method} ${req.op.template}`;
        const label = `${req.method} ${req.path.slice(0, 120)}`;
        let status = 0;
        try {
          const res = await fetch(`${env.serve.baseUrl}${req.path}`, {
            method: req.method,
            headers: req.headers,
            body: req.body,
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          status = res.status;
          const text = await res.text();
          const problem = checkResponse(req, status, res.headers, text, pools.ownerIds);
          if (problem !== undefined) {
            const body = typeof req.body === "string" ? ` body ${req.body.slice(0, 300)}` : "";
            failures.push({ request: label, shape: `${req.shape}${body}`, problem });
          }
          if (status < 400 && req.method !== "GET" && req.method !== "HEAD") changedSomething = true;
        } catch (err) {
          const e = err as Error;
          // A header value fetch itself refuses never left the client.
          if (e instanceof TypeError && /header/i.test(e.message)) continue;
          failures.push({ request: label, shape: req.shape, problem: `${e.name}: ${e.message}` });
        }
        const byStatus = perRoute.get(route) ?? new Map<string, number>();
        byStatus.set(String(status), (byStatus.get(String(status)) ?? 0) + 1);
        perRoute.set(route, byStatus);
      }
      if (!env.serve.proc.alive()) {
        failures.push({
          request: "(process)",
          shape: "",
          problem: `serve exited with ${env.serve.proc.proc?.exitCode}`,
        });
        await env.serve.proc.start();
      } else {
        const live = await fetch(`${env.serve.baseUrl}/live`, {
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        }).catch(() => undefined);
        if (live?.status !== 200)
          failures.push({
            request: "GET /live",
            shape: "",
            problem: `answered ${live?.status ?? "nothing"}`,
          });
      }
      if (!changedSomething) {
        batchesCompared++;
        const after = await snapshot(env.sql);
        if (after !== before) {
          failures.push({
            request: batch.map((r) => `${r.method} ${r.path.slice(0, 60)}`).join(", "),
            shape: "batch of rejected requests",
            problem: `database changed: ${before} → ${after}`,
          });
        }
      }
    }
    if (failures.some((f) => f.problem.startsWith("HTTP 5"))) {
      const log = await Bun.file(env.serve.proc.logPath())
        .text()
        .catch(() => "");
      const errors = log.split("\n").filter((l) => /"level":"(error|fatal)"/.test(l));
      print(`[fuzz] serve logged ${errors.length} error line(s); the first ones:`);
      for (const l of errors.slice(0, 5)) print(`  ${l.slice(0, 600)}`);
    }
    const result: FuzzResult = {
      ok: failures.length === 0,
      seed: o.seed,
      sent,
      perRoute,
      failures,
      batchesCompared,
      seconds: (performance.now() - t0) / 1000,
    };
    printFuzzReport(print, result);
    return result;
  } finally {
    await env.teardown();
  }
}

function printFuzzReport(print: Printer, r: FuzzResult): void {
  section(print, "fuzz report");
  kv(print, [
    ["seed", `${r.seed}   (replay: FUZZ_SEED=${r.seed} make fuzz)`],
    ["requests", r.sent],
    ["duration", `${r.seconds.toFixed(1)} s`],
    [
      "rejected-only batches compared",
      `${r.batchesCompared} (database unchanged in each unless listed below)`,
    ],
    ["failures", r.failures.length],
  ]);
  section(print, "requests per route (status: count)");
  const rows = [...r.perRoute.entries()]
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([route, m]) => {
      const total = [...m.values()].reduce((a, b) => a + b, 0);
      const statuses = [...m.entries()]
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([s, n]) => `${s}:${n}`)
        .join(" ");
      return [route, total, statuses];
    });
  table(print, ["route", "sent", "statuses"], rows);
  if (r.failures.length > 0) {
    section(print, `failures (first ${MAX_FAILURES_PRINTED})`);
    for (const f of r.failures.slice(0, MAX_FAILURES_PRINTED))
      print(`  ${f.request}\n      [${f.shape}] ${f.problem}`);
  }
  print("");
  print(r.ok ? `FUZZ OK (seed ${r.seed})` : `FUZZ FAILED: replay with FUZZ_SEED=${r.seed} make fuzz`);
}

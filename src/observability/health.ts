// Health probes (SPEC §5.1). Checks run concurrently, each under its own deadline, on a
// small dedicated pool (PROBE_POOL_MAX) so a saturated API pool — e.g. requests queued
// behind a row lock — never makes a healthy pod look dead, and probes never take
// connections from requests. Results are cached briefly: a burst of probes costs one check.
// Bodies carry fixed phrases only, never an error's text (it can hold hosts or secrets).

import { BUILD_INFO } from "../cli/version.ts";
import type { Config } from "../config.ts";
import type { Sql } from "../db/client.ts";
import { schemaState as readSchemaState, type SchemaState } from "../db/migrator.ts";
import { EXPECTED_SCHEMA_VERSION } from "../db/registry.ts";
import { outboxVerdict } from "../outbox/health.ts";
import { type OutboxStats, outboxStats } from "../outbox/store.ts";
import { connectionsInUse, poolTracker } from "./db-metrics.ts";
import { BREAKER_TARGETS, type Metrics } from "./metrics.ts";

export const HEALTH_CONTENT_TYPE = "application/health+json";
/** Deadline of each database check (SPEC: DB ≤ 2 s). */
export const DB_CHECK_DEADLINE_MS = 2_000;
/** /ready and /health/detailed results are reused this long. */
export const HEALTH_CACHE_MS = 1_000;
/** Connections of the probe/scrape pool. */
export const PROBE_POOL_MAX = 2;
/** Server-side statement timeout of probe and scrape queries. */
export const PROBE_STATEMENT_TIMEOUT_MS = 2_000;

export type HealthStatus = "pass" | "warn" | "fail";
export type Check = {
  status: HealthStatus;
  componentType?: string;
  observedValue?: number | string | boolean;
  observedUnit?: string;
  output?: string;
  time: string;
};
export type HealthBody = {
  status: HealthStatus;
  version: string;
  releaseId: string;
  serviceId: "paybridge";
  description?: string;
  uptime_seconds?: number;
  checks?: Record<string, Check[]>;
};

export type Lifecycle = { draining: boolean; startedAt: number };

export type HealthDeps = {
  config: Config;
  /** The API pool (its in-use count is read from the tracker, never queried). */
  sql: Sql;
  /** The small probe pool. */
  probeSql: Sql;
  lifecycle: Lifecycle;
  metrics: Metrics;
  /** Defaults to the migrator's schemaState. */
  schemaState?: (sql: Sql) => Promise<SchemaState>;
};

class DeadlineError extends Error {}

export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError("deadline")), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The worst status wins: any fail is fail, else any warn is warn. */
export function overall(checks: Record<string, Check[]>): HealthStatus {
  let s: HealthStatus = "pass";
  for (const list of Object.values(checks)) {
    for (const c of list) {
      if (c.status === "fail") return "fail";
      if (c.status === "warn") s = "warn";
    }
  }
  return s;
}

export function httpStatusOf(s: HealthStatus): 200 | 503 {
  switch (s) {
    case "pass":
    case "warn":
      return 200;
    case "fail":
      return 503;
    default: {
      const never: never = s;
      return never;
    }
  }
}

type Cached<T> = { at: number; value: Promise<T> };

/** A computation shared by concurrent callers and reused for `ttlMs`. */
function cached<T>(ttlMs: number, compute: () => Promise<T>): () => Promise<T> {
  let entry: Cached<T> | undefined;
  return () => {
    const now = Date.now();
    if (entry === undefined || now - entry.at > ttlMs) entry = { at: now, value: compute() };
    return entry.value;
  };
}

export type DbSnapshot = {
  up: boolean;
  latencyMs?: number;
  schema?: SchemaState;
  outbox?: OutboxStats;
};

export function createHealth(deps: HealthDeps) {
  const readSchema = deps.schemaState ?? readSchemaState;
  const base = (): Omit<HealthBody, "status"> => ({
    version: BUILD_INFO.version,
    releaseId: BUILD_INFO.revision,
    serviceId: "paybridge",
  });
  const now = () => new Date().toISOString();

  async function pingDb(): Promise<{ up: boolean; latencyMs?: number }> {
    const start = performance.now();
    try {
      await withDeadline(
        deps.probeSql`select 1`.then(() => undefined),
        DB_CHECK_DEADLINE_MS,
      );
      return { up: true, latencyMs: Math.round((performance.now() - start) * 10) / 10 };
    } catch {
      return { up: false };
    }
  }

  async function schema(): Promise<SchemaState | undefined> {
    try {
      return await withDeadline(readSchema(deps.probeSql), DB_CHECK_DEADLINE_MS);
    } catch {
      return undefined;
    }
  }

  async function outbox(): Promise<OutboxStats | undefined> {
    try {
      return await withDeadline(outboxStats(deps.probeSql), DB_CHECK_DEADLINE_MS);
    } catch {
      return undefined;
    }
  }

  function schemaCheck(s: SchemaState | undefined): Check {
    if (s === undefined)
      return { status: "fail", componentType: "datastore", output: "schema state unavailable", time: now() };
    const v = s.version ?? 0;
    const observedValue = s.version ?? "none";
    if (s.dirty)
      return {
        status: "fail",
        componentType: "datastore",
        observedValue,
        output: "schema dirty",
        time: now(),
      };
    if (s.drift.length > 0)
      return {
        status: "fail",
        componentType: "datastore",
        observedValue,
        output: "schema drift",
        time: now(),
      };
    if (v < EXPECTED_SCHEMA_VERSION) {
      return {
        status: "fail",
        componentType: "datastore",
        observedValue,
        output: `schema behind (expects ${EXPECTED_SCHEMA_VERSION})`,
        time: now(),
      };
    }
    return { status: "pass", componentType: "datastore", observedValue, time: now() };
  }

  function dbCheck(db: { up: boolean; latencyMs?: number }): Check {
    return db.up
      ? {
          status: "pass",
          componentType: "datastore",
          observedValue: db.latencyMs ?? 0,
          observedUnit: "ms",
          time: now(),
        }
      : { status: "fail", componentType: "datastore", output: "database unreachable", time: now() };
  }

  function drainingCheck(): Check {
    return deps.lifecycle.draining
      ? { status: "fail", componentType: "system", observedValue: true, output: "draining", time: now() }
      : { status: "pass", componentType: "system", observedValue: false, time: now() };
  }

  function uptimeSeconds(): number {
    return Math.round((Date.now() - deps.lifecycle.startedAt) / 1000);
  }

  /** One database round: ping, then schema and outbox concurrently (skipped when down). */
  const snapshot = cached(HEALTH_CACHE_MS, async (): Promise<DbSnapshot> => {
    const db = await pingDb();
    if (!db.up) return { up: false };
    const [s, o] = await Promise.all([schema(), outbox()]);
    return {
      up: true,
      latencyMs: db.latencyMs,
      schema: s,
      outbox: o,
    };
  });

  async function ready(): Promise<HealthBody> {
    // Draining answers at once: no database round needed to say "stop sending traffic".
    if (deps.lifecycle.draining) {
      return { status: "fail", ...base(), checks: { "process:draining": [drainingCheck()] } };
    }
    const snap = await snapshot();
    const checks: Record<string, Check[]> = {
      "postgres:responseTime": [dbCheck(snap)],
      "postgres:schemaVersion": [
        snap.up ? schemaCheck(snap.schema) : { status: "fail", output: "database unreachable", time: now() },
      ],
      "process:draining": [drainingCheck()],
    };
    return { status: overall(checks), ...base(), checks };
  }

  async function detailed(): Promise<HealthBody> {
    const snap = await snapshot();
    const t = poolTracker(deps.sql);
    const checks: Record<string, Check[]> = {
      "postgres:responseTime": [dbCheck(snap)],
      "postgres:schemaVersion": [
        snap.up ? schemaCheck(snap.schema) : { status: "fail", output: "database unreachable", time: now() },
      ],
      "postgres:connections": [
        {
          status: "pass",
          componentType: "datastore",
          observedValue: t === undefined ? 0 : connectionsInUse(t),
          observedUnit: "in_use",
          time: now(),
        },
        {
          status: "pass",
          componentType: "datastore",
          observedValue: t?.max ?? deps.config.dbPoolMax,
          observedUnit: "max",
          time: now(),
        },
      ],
      "process:draining": [drainingCheck()],
      uptime: [
        {
          status: "pass",
          componentType: "system",
          observedValue: uptimeSeconds(),
          observedUnit: "s",
          time: now(),
        },
      ],
    };
    if (snap.outbox !== undefined) {
      const o = snap.outbox;
      const verdict = outboxVerdict(o, deps.config);
      const at = now();
      const check = (
        status: HealthStatus,
        observedValue: number,
        observedUnit: string,
        output?: string,
      ): Check => ({
        status,
        componentType: "component",
        observedValue,
        observedUnit,
        ...(output === undefined ? {} : { output }),
        time: at,
      });
      checks["outbox:pending"] = [
        check(verdict.backlog, o.pending, "events"),
        check(verdict.backlog, Math.round(o.oldestPendingAgeSeconds ?? 0), "oldest_age_s"),
      ];
      checks["outbox:failed"] = [
        check(
          verdict.parked,
          o.failed,
          "events",
          o.failed > 0 ? "parked events: POST /api/v1/admin/events/requeue" : undefined,
        ),
      ];
    }
    const breakers = await deps.metrics.breakerState.get();
    for (const target of BREAKER_TARGETS) {
      const v = breakers.values.find((x) => x.labels.target === target)?.value ?? 0;
      const state = v === 2 ? "open" : v === 1 ? "half-open" : "closed";
      // A degraded delivery target is a warning, never a failure: the API still works.
      checks[`breaker:${target}`] = [
        { status: v === 0 ? "pass" : "warn", componentType: "component", observedValue: state, time: now() },
      ];
    }
    return { status: overall(checks), ...base(), uptime_seconds: uptimeSeconds(), checks };
  }

  return {
    /** Process only, never the database (SPEC §5.1: exactly {"status":"pass"}). */
    live(): { status: "pass" } {
      return { status: "pass" };
    },
    health(): HealthBody {
      return { status: "pass", ...base(), uptime_seconds: uptimeSeconds() };
    },
    ready,
    detailed,
    /** The cached database round, shared with the scrape-time gauges. */
    snapshot,
  };
}

export type Health = ReturnType<typeof createHealth>;

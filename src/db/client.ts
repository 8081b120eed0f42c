// One postgres.js pool per process. Every connection identifies itself and carries
// server-side timeouts, so a stuck query or an abandoned transaction cannot pin a
// connection (and its row locks) forever.
import postgres from "postgres";
import type { Config } from "../config.ts";
import { instrumentSql, poolTracker } from "../observability/db-metrics.ts";
import type { Metrics } from "../observability/metrics.ts";
import { sslOptions } from "./tls.ts";

export type Sql = postgres.Sql<Record<string, never>>;
export type TxSql = postgres.TransactionSql<Record<string, never>>;

/** Connect timeout: long enough for a cold TLS handshake, short enough to fail a probe. */
export const DB_CONNECT_TIMEOUT_SECONDS = 5;
/** An idle transaction holding locks is killed after this long. */
export const DB_IDLE_IN_TRANSACTION_TIMEOUT_MS = 15_000;
/** Idle pooled connections are closed after this long. */
export const DB_IDLE_TIMEOUT_SECONDS = 60;

export type PoolOptions = {
  applicationName: string;
  max?: number;
  statementTimeoutMs?: number;
  /** postgres.js `onnotice`; notices are dropped by default (migrations emit many). */
  onnotice?: (n: postgres.Notice) => void;
  /**
   * When given, every tagged query feeds paybridge_db_query_duration_seconds /
   * paybridge_db_errors_total and the pool's in-use count (see observability/db-metrics.ts).
   */
  metrics?: Metrics;
  /** With metrics: report as part of this (instrumented) pool, not as a pool of its own. */
  countInto?: Sql;
};

export function createSql(config: Config, opts: PoolOptions): Sql {
  const max = opts.max ?? config.dbPoolMax;
  const { url, ssl } = sslOptions(config.databaseUrl); // sslmode, sslrootcert: src/db/tls.ts
  const sql = postgres(url, {
    ssl,
    max,
    connect_timeout: DB_CONNECT_TIMEOUT_SECONDS,
    idle_timeout: DB_IDLE_TIMEOUT_SECONDS,
    // bigint columns come back as JS bigint: money never passes through a float.
    types: { bigint: postgres.BigInt },
    onnotice: opts.onnotice ?? (() => {}),
    connection: {
      application_name: opts.applicationName,
      statement_timeout: opts.statementTimeoutMs ?? config.dbStatementTimeoutMs,
      idle_in_transaction_session_timeout: DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    },
  }) as unknown as Sql;
  return opts.metrics === undefined
    ? sql
    : instrumentSql(sql, opts.metrics, {
        applicationName: opts.applicationName,
        max,
        tracker: opts.countInto === undefined ? undefined : poolTracker(opts.countInto),
      });
}

/** Connections of their own for the money postings of src/ledger/batcher.ts. */
export type PostingPool = { sql: Sql; lanes: number };

/**
 * The lanes serve gives its posting batcher: POSTING_LANES, leaving at least one of the
 * DB_POOL_MAX connections to everything else (0 when DB_POOL_MAX is 1: postings then share
 * the one connection).
 */
export function postingLaneCount(config: Config): number {
  return Math.max(0, Math.min(config.postingLanes, config.dbPoolMax - 1));
}

/**
 * serve's connections: DB_POOL_MAX in all, of which the posting lanes are a pool of their own.
 *
 * Why not one pool: postgres.js gives a query the connection that has been idle longest, so
 * in one pool of N the postings, never more than the lanes at once, rotate over all N
 * backends, and each arrives at one that slept since its last turn (its process woken, its
 * caches cold). Measured with make bench (pool 4, 2 lanes, uniform transfers, API ÷ pgbench):
 * one pool 51% and 56%, lanes on connections of their own 64% and 68% (a pool of 2, both
 * connections lanes: 61%, 61%). It also keeps reads and postings from queueing behind each other.
 */
export function createServePools(
  config: Config,
  opts: { applicationName: string; metrics?: Metrics },
): { sql: Sql; postings: PostingPool | undefined; end: (timeoutSeconds: number) => Promise<void> } {
  const lanes = postingLaneCount(config);
  const sql = createSql(config, { ...opts, max: config.dbPoolMax - lanes });
  const postings =
    lanes === 0 ? undefined : { sql: createSql(config, { ...opts, max: lanes, countInto: sql }), lanes };
  const end = async (timeout: number) => {
    await Promise.all([sql.end({ timeout }), postings?.sql.end({ timeout })]);
  };
  return { sql, postings, end };
}

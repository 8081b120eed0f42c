// One postgres.js pool per process. Every connection identifies itself and carries
// server-side timeouts, so a stuck query or an abandoned transaction cannot pin a
// connection (and its row locks) forever.
import postgres from "postgres";
import type { Config } from "../config.ts";
import { instrumentSql } from "../observability/db-metrics.ts";
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
    : instrumentSql(sql, opts.metrics, { applicationName: opts.applicationName, max });
}

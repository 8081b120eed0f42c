// Query metrics for postgres.js, which has no hooks: the `sql` tag is wrapped in a function that
// classifies each tagged template once (operation + first table, cached per call site) and
// times the query from the moment postgres.js executes it until it settles. Fragments
// (sql`...` nested in another query) are never executed, so they are never counted.
// Transactions (`sql.begin`) are timed as a whole and their queries individually; the
// tracker also counts what holds a connection (running queries, open transactions,
// reservations) for `paybridge_db_connections{state="in_use"}`.
import type { Sql } from "../db/client.ts";
import type { Metrics } from "./metrics.ts";

export const DB_OPERATIONS = ["select", "insert", "update", "delete", "transaction", "other"] as const;
export type DbOperation = (typeof DB_OPERATIONS)[number];
/** Tables we name in labels; anything else is "other" (bounded cardinality). */
export const DB_TABLES = [
  "users",
  "wallets",
  "transactions",
  "ledger_entries",
  "idempotency_keys",
  "outbox",
  "migrations",
  "schema_migrations",
] as const;
const KNOWN_TABLES: ReadonlySet<string> = new Set(DB_TABLES);
/** Label for statements that read no table (`select 1`) and for whole transactions. */
export const NO_TABLE = "none";

export type QueryClass = { operation: DbOperation; table: string };

/** A finished query, for span exporters. Times are epoch milliseconds. */
export type QueryEvent = QueryClass & { startMs: number; endMs: number; error?: unknown };

export type PoolTracker = {
  applicationName: string;
  max: number;
  /** Queries running outside a transaction. */
  queries: number;
  transactions: number;
  reserved: number;
  /**
   * Called as a query or transaction starts, in its caller's async context; the listener it
   * returns (if any) gets the finished query. Span exporters read the request's ids at the
   * start: postgres.js settles a query in its connection's context, not the caller's.
   */
  onQueryStart: (() => ((e: QueryEvent) => void) | undefined) | undefined;
};

const trackers = new WeakMap<object, PoolTracker>();

/** The tracker of an instrumented pool (undefined for a bare postgres.js pool). */
export function poolTracker(sql: Sql): PoolTracker | undefined {
  return trackers.get(sql);
}

/** Connections held right now (never above the pool size: queued queries wait for one). */
export function connectionsInUse(t: PoolTracker): number {
  return Math.min(t.max, t.queries + t.transactions + t.reserved);
}

const classCache = new WeakMap<TemplateStringsArray, QueryClass>();
/** The class of a whole transaction (one object: it keys the metric series cache). */
const TRANSACTION_CLASS: QueryClass = Object.freeze({ operation: "transaction", table: NO_TABLE });
const FIRST_WORD = /^\s*([a-z]+)/;
const TABLE_AFTER: Record<"select" | "insert" | "update" | "delete", RegExp> = {
  select: /\bfrom\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)"?(?:\s*\.\s*"?([a-z_][a-z0-9_]*)"?)?/,
  insert: /\binto\s+"?([a-z_][a-z0-9_]*)"?(?:\s*\.\s*"?([a-z_][a-z0-9_]*)"?)?/,
  update: /\bupdate\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)"?(?:\s*\.\s*"?([a-z_][a-z0-9_]*)"?)?/,
  delete: /\bdelete\s+from\s+(?:only\s+)?"?([a-z_][a-z0-9_]*)"?(?:\s*\.\s*"?([a-z_][a-z0-9_]*)"?)?/,
};

/** Operation and first table of a statement; bounded label values whatever the text. */
export function classifyStatement(text: string): QueryClass {
  const s = text
    .replace(/--[^\n]*/g, " ")
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .toLowerCase();
  const first = FIRST_WORD.exec(s)?.[1] ?? "";
  let operation: DbOperation;
  if (first === "select" || first === "insert" || first === "update" || first === "delete") operation = first;
  else if (first === "with") {
    // A CTE: the main statement is the first data-modifying one, else it reads.
    const m = /\b(insert\s+into|update\s+(?:only\s+)?"?[a-z_]|delete\s+from)\b/.exec(s);
    operation = m === null ? "select" : (m[1]?.split(/\s/)[0] as DbOperation);
  } else if (first === "values" || first === "table") operation = "select";
  else operation = "other";
  if (operation === "other" || operation === "transaction") return { operation, table: NO_TABLE };
  const m = TABLE_AFTER[operation].exec(s);
  if (m === null) return { operation, table: NO_TABLE };
  const name = m[2] ?? m[1] ?? "";
  return { operation, table: KNOWN_TABLES.has(name) ? name : "other" };
}

function classifyTemplate(strings: TemplateStringsArray): QueryClass {
  let c = classCache.get(strings);
  if (c === undefined) {
    c = classifyStatement(strings.join("$"));
    classCache.set(strings, c);
  }
  return c;
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/** A bounded class for an error from postgres.js (SQLSTATE classes, connection failures). */
export function dbErrorType(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return "other";
  if (CONNECTION_CODES.has(code) || code.startsWith("08") || code.startsWith("57P")) return "connection";
  if (code === "57014") return "timeout";
  if (code === "40001") return "serialization";
  if (code === "40P01") return "deadlock";
  if (code === "23505") return "unique_violation";
  if (code === "55P03") return "lock_not_available";
  if (code.startsWith("23")) return "constraint";
  if (code.startsWith("22")) return "data";
  if (code.startsWith("25")) return "transaction_state";
  if (code.startsWith("42")) return "syntax";
  if (code.startsWith("53")) return "resources";
  if (code === "P0001") return "raise";
  return "other";
}

/** The own properties of a postgres.js Query that the instrumentation wraps. */
type QueryLike = {
  handler: (q: QueryLike) => unknown;
  resolve: (value: unknown) => unknown;
  reject: (error: unknown) => unknown;
};

/**
 * Times one postgres.js Query from the moment the pool takes it (`handler`, called once,
 * when the query is awaited or `.execute()`d; fragments never get there) until the
 * connection settles it (`resolve` / `reject`). All three are own properties of every
 * Query, so replacing them keeps the objects' shape, and the end is seen without chaining
 * an extra promise (and a microtask) to every query.
 */
function observeQuery(q: QueryLike, c: QueryClass, metrics: Metrics, t: PoolTracker, inTx: boolean): void {
  const { handler, resolve, reject } = q;
  let start = 0;
  let running = false;
  let listener: ((e: QueryEvent) => void) | undefined;
  const done = (error?: unknown) => {
    // A query cancelled before the pool took it was never running; settle counts once.
    if (!running) return;
    running = false;
    if (!inTx) t.queries--;
    const seconds = (performance.now() - start) / 1000;
    metrics.dbQuerySeries(c).observe(seconds);
    if (error !== undefined) metrics.dbErrors.inc({ operation: c.operation, error_type: dbErrorType(error) });
    if (listener !== undefined) {
      const startMs = performance.timeOrigin + start;
      listener({ ...c, startMs, endMs: startMs + seconds * 1000, error });
    }
  };
  q.handler = (query) => {
    start = performance.now();
    running = true;
    if (!inTx) t.queries++;
    listener = t.onQueryStart?.();
    return handler(query);
  };
  q.resolve = (value) => {
    done();
    return resolve(value);
  };
  q.reject = (error) => {
    done(error ?? new Error("query failed"));
    return reject(error);
  };
}

// biome-ignore lint/suspicious/noExplicitAny: postgres.js call signatures are overloaded.
type AnyFn = (...args: any[]) => any;

function instrument<T extends object>(target: T, metrics: Metrics, t: PoolTracker, inTx: boolean): T {
  const fn = target as unknown as AnyFn & Record<string, unknown>;
  const begin = (...args: unknown[]) => {
    const body = args.at(-1) as AnyFn;
    const rest = args.slice(0, -1);
    const start = performance.now();
    t.transactions++;
    const listener = t.onQueryStart?.();
    let entered = false;
    const finish = (error?: unknown) => {
      t.transactions--;
      const seconds = (performance.now() - start) / 1000;
      const c = TRANSACTION_CLASS;
      metrics.dbQuerySeries(c).observe(seconds);
      // A failure before the body ran (cannot connect, cannot BEGIN) is the transaction's
      // own; failures inside were counted by the query that failed.
      if (error !== undefined && !entered && dbErrorType(error) !== "other") {
        metrics.dbErrors.inc({ operation: "transaction", error_type: dbErrorType(error) });
      }
      if (listener !== undefined) {
        const startMs = performance.timeOrigin + start;
        listener({ ...c, startMs, endMs: startMs + seconds * 1000, error });
      }
    };
    const p = (fn.begin as AnyFn)(...rest, (tx: object) => {
      entered = true;
      return body(instrument(tx, metrics, t, true));
    }) as Promise<unknown>;
    return p.then(
      (v) => {
        finish();
        return v;
      },
      (e: unknown) => {
        finish(e);
        throw e;
      },
    );
  };
  const savepoint = (...args: unknown[]) => {
    const body = args.at(-1) as AnyFn;
    const rest = args.slice(0, -1);
    return (fn.savepoint as AnyFn)(...rest, (sp: object) => body(instrument(sp, metrics, t, true)));
  };
  const reserve = async () => {
    const reserved = (await (fn.reserve as AnyFn)()) as AnyFn & Record<string, unknown>;
    t.reserved++;
    const release = reserved.release as AnyFn;
    let released = false;
    reserved.release = () => {
      if (!released) {
        released = true;
        t.reserved--;
      }
      return release();
    };
    return instrument(reserved, metrics, t, true);
  };
  // A plain function in front of postgres.js's `sql`, not a Proxy: a call through a Proxy's
  // apply trap showed up at ~1 us in CPU profiles, and GET /api/v1/wallets/:id makes two
  // (`sql(columns)` is a call too). Everything else (unsafe, json, end, ...) is found through the prototype;
  // postgres.js's helpers are closures that never read `this`.
  const wrapped = (...args: unknown[]) => {
    const q = fn(...args);
    const strings = args[0] as { raw?: unknown } | undefined;
    if (strings !== undefined && strings !== null && Array.isArray(strings.raw)) {
      observeQuery(q as QueryLike, classifyTemplate(strings as TemplateStringsArray), metrics, t, inTx);
    }
    return q;
  };
  Object.setPrototypeOf(wrapped, target);
  if (inTx) Object.assign(wrapped, { savepoint });
  else Object.assign(wrapped, { begin, reserve });
  return wrapped as unknown as T;
}

export type InstrumentOptions = {
  applicationName: string;
  max: number;
  onQueryStart?: PoolTracker["onQueryStart"];
  /**
   * Count into this tracker instead of a new one, its max growing by this pool's: two
   * postgres.js pools that report as one (serve's posting lanes, src/db/client.ts).
   */
  tracker?: PoolTracker;
};

/** Wraps a pool so every tagged query feeds the db metrics; returns the wrapped pool. */
export function instrumentSql(sql: Sql, metrics: Metrics, opts: InstrumentOptions): Sql {
  let t: PoolTracker;
  if (opts.tracker !== undefined) {
    t = opts.tracker;
    t.max += opts.max;
  } else {
    t = {
      applicationName: opts.applicationName,
      max: opts.max,
      queries: 0,
      transactions: 0,
      reserved: 0,
      onQueryStart: opts.onQueryStart,
    };
  }
  const wrapped = instrument(sql, metrics, t, false);
  trackers.set(wrapped, t);
  return wrapped;
}

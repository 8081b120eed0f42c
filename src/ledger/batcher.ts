// Group commit for HTTP postings. A posting is one statement (pb_post_http) in its own
// transaction, and under load most of its database cost is per transaction, not per row: the
// commit and its WAL flush, statement set-up, and plpgsql rebuilding the evaluation state of
// each expression once per transaction. So while every lane is busy, the postings that arrive
// queue here, and the next free lane sends all of them as ONE statement (pb_post_http_batch,
// migration 00012): one transaction, each posting with its own outcome, response,
// idempotency record and events, exactly as alone.
//
// Nothing waits for a batch to fill: a posting that finds a lane free is sent at once, alone.
// Batches only form from requests that arrive while every lane is busy. Lanes are few on
// purpose (POSTING_LANES, default 2): the database does more work per transaction instead of
// more transactions fighting for its cores. In serve the lanes have connections of their own
// (src/db/client.ts createServePools), so postings always run on the same warm backends.
//
// A batch the database refuses (it rolled back whole, nothing was written) is not retried as a
// batch: each of its postings runs alone, so one bad posting costs the others only time and
// each gets its own answer (a deadlock or serialization failure then goes to post()'s retry).
// Postings with the same idempotency key never share a batch: the second waits for the next
// one, where it finds the first committed (replay) or still in flight (409), as alone.
import type { Sql } from "../db/client.ts";
import { sqlState } from "../db/errors.ts";

/** pb_post_http's answer for one posting. */
export type HttpRow = { o_kind: string; o_status: number | null; o_body: string | null; o_info: unknown };

/** One HTTP posting alone: one auto-committed statement does everything, the body comes back as text. */
export async function postHttpAlone(sql: Sql, params: string): Promise<HttpRow> {
  const [row] = await sql`SELECT * FROM pb_post_http(${params}::text::jsonb)`;
  return row as HttpRow;
}

type Pending = {
  /** The posting's pb_post_http parameters, as JSON text. */
  params: string;
  /** Idempotency scope and key: two postings with the same one never share a batch. */
  key: string;
  resolve: (row: HttpRow) => void;
  reject: (err: unknown) => void;
};

export type BatcherOptions = {
  /** Posting statements in flight at once (each holds one pool connection; POSTING_LANES). */
  lanes: number;
  /** Most postings in one batch; 1 turns batching off. */
  maxBatch: number;
};

/** Counters for tests and benchmarks (not exported as metrics: SPEC §5.2 fixes the names). */
export type BatcherStats = {
  statements: number;
  batches: number;
  batchedPostings: number;
  fallbacks: number;
};

export class PostingBatcher {
  readonly #sql: Sql;
  readonly #lanes: number;
  readonly #maxBatch: number;
  readonly #queue: Pending[] = [];
  #busy = 0;
  readonly stats: BatcherStats = { statements: 0, batches: 0, batchedPostings: 0, fallbacks: 0 };

  constructor(sql: Sql, opts: BatcherOptions) {
    this.#sql = sql;
    this.#lanes = Math.max(1, opts.lanes);
    this.#maxBatch = Math.max(1, opts.maxBatch);
  }

  /** Runs one posting (a transfer or a plain credit/debit, see 00012) and returns its row. */
  post(params: string, key: string): Promise<HttpRow> {
    return new Promise<HttpRow>((resolve, reject) => {
      this.#queue.push({ params, key, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#busy < this.#lanes && this.#queue.length > 0) {
      const batch = this.#take();
      this.#busy++;
      void this.#run(batch)
        // #run settles every failure it expects; anything else still frees the lane.
        .catch((err: unknown) => () => rejectAll(batch, err))
        .then((settle) => {
          // The lane is handed on before anyone hears back: the next batch goes to the database
          // first, and the answered requests render and send their responses while it runs.
          // Settling first put all of that JavaScript between two statements of the lane, its
          // backend idle meanwhile. Uniform transfers, pool 4, four alternating runs each: 60-67%
          // of pgbench (mean 64%) against 57-64% (mean 61%).
          this.#busy--;
          this.#pump();
          settle();
        });
    }
  }

  /** The oldest queued postings, up to maxBatch, no two with the same idempotency key. */
  #take(): Pending[] {
    const first = this.#queue.shift()!;
    if (this.#maxBatch === 1 || this.#queue.length === 0) return [first];
    const batch = [first];
    const keys = new Set([first.key]);
    let i = 0;
    while (i < this.#queue.length && batch.length < this.#maxBatch) {
      const p = this.#queue[i]!;
      if (keys.has(p.key)) {
        i++;
        continue;
      }
      keys.add(p.key);
      batch.push(p);
      this.#queue.splice(i, 1);
    }
    return batch;
  }

  /** Runs a batch; what it returns settles its postings (it never throws). */
  async #run(batch: Pending[]): Promise<() => void> {
    if (batch.length > 1) {
      let rows: HttpRow[];
      try {
        rows = await this.#many(batch);
      } catch (err) {
        // Only an error the database reported proves the batch rolled back; after a lost
        // connection it may have committed, so its postings get that error, as alone.
        if (sqlState(err) === undefined) return () => rejectAll(batch, err);
        this.stats.fallbacks++;
        return this.#alone(batch);
      }
      if (rows.length !== batch.length || !batch.every((_, i) => rows[i] !== undefined)) {
        // Committed, but not answerable: never run again (a retry with the key replays).
        const err = new Error(`pb_post_http_batch: ${rows.length} rows for ${batch.length} postings`);
        return () => rejectAll(batch, err);
      }
      return () => {
        for (const [i, p] of batch.entries()) p.resolve(rows[i]!);
      };
    }
    return this.#alone(batch);
  }

  /**
   * Each posting alone, one after the other on this lane. Each is settled once the next one is
   * on its way; the last one's settling is returned (see #pump).
   */
  async #alone(batch: Pending[]): Promise<() => void> {
    let settle = () => {};
    for (const p of batch) {
      const previous = settle;
      const answer = this.#one(p.params);
      previous();
      try {
        const row = await answer;
        settle = () => p.resolve(row);
      } catch (err) {
        settle = () => p.reject(err);
      }
    }
    return settle;
  }

  async #one(params: string): Promise<HttpRow> {
    this.stats.statements++;
    return postHttpAlone(this.#sql, params);
  }

  async #many(batch: Pending[]): Promise<HttpRow[]> {
    this.stats.statements++;
    // The parameters are JSON already: the array is their concatenation.
    const ps = `[${batch.map((p) => p.params).join(",")}]`;
    const rows = (await this
      .#sql`SELECT * FROM pb_post_http_batch(${ps}::text::jsonb)`) as unknown as (HttpRow & {
      o_index: number;
    })[];
    const byIndex: HttpRow[] = [];
    for (const r of rows) byIndex[r.o_index - 1] = r;
    this.stats.batches++;
    this.stats.batchedPostings += batch.length;
    return byIndex;
  }
}

function rejectAll(batch: Pending[], err: unknown): void {
  for (const p of batch) p.reject(err);
}

// Per-request metric updates without prom-client's per-call label work. `observe(labels, v)`
// and `inc(labels)` build a closure and a wrapper object, validate every label and render a
// hash string from the label values on every call: at 10k requests/s, four such updates per
// request were ~4% of the server's CPU in a profile (fastHashObject, validateLabel, closure).
//
// A handle here resolves a label set once (through prom-client's own observe/inc, so the
// first update validates the labels and creates the series exactly as prom-client would)
// and then updates that series' entry in the metric's own storage: the same objects that
// prom-client's `get()` renders, so the exposition, `reset()` and the registry are
// prom-client's. The entry layout ({labels, value} for counters, {labels, bucketValues, sum,
// count} for histograms) is prom-client 15's (pinned in bun.lock); test/observability/
// unit.test.ts feeds a plain prom-client metric and a handle the same updates and requires
// byte-identical exposition, so a layout change fails there, not in production.
import type { Counter, Histogram } from "prom-client";

type CounterEntry = { value: number; labels: object };
type HistogramEntry = { labels: object; bucketValues: Record<string, number>; sum: number; count: number };
/** The storage prom-client keeps per metric (not in its typings). */
type Stored<E> = { hashMap: Record<string, E> };

/**
 * Finds the entry prom-client created for `labels` (it stores the labels object it was
 * given). Only runs on a series' first update, or after `reset()` replaced the storage.
 */
function entryOf<E extends { labels: object }>(metric: Stored<E>, labels: object): E | undefined {
  for (const key in metric.hashMap) {
    const e = metric.hashMap[key];
    if (e !== undefined && e.labels === labels) return e;
  }
  return undefined;
}

/** A label set's series of a counter: `inc()` adds one. */
export type CounterSeries = { inc(): void };

export function counterSeries<T extends string>(
  counter: Counter<T>,
  labels: Record<T, string>,
): CounterSeries {
  const stored = counter as unknown as Stored<CounterEntry>;
  let map: Record<string, CounterEntry> | undefined;
  let entry: CounterEntry | undefined;
  return {
    inc() {
      if (entry !== undefined && stored.hashMap === map) {
        entry.value += 1;
        return;
      }
      counter.inc(labels, 1);
      map = stored.hashMap;
      entry = entryOf(stored, labels);
    },
  };
}

/** A label set's series of a histogram: `observe(v)` records one value. */
export type HistogramSeries = { observe(value: number): void };

export function histogramSeries<T extends string>(
  histogram: Histogram<T>,
  labels: Record<T, string>,
): HistogramSeries {
  const stored = histogram as unknown as Stored<HistogramEntry> & { upperBounds: readonly number[] };
  const bounds = stored.upperBounds;
  // Property names of bucketValues, rendered once (a number key is converted on every access).
  const keys = bounds.map(String);
  let map: Record<string, HistogramEntry> | undefined;
  let entry: HistogramEntry | undefined;
  return {
    observe(value: number) {
      if (entry === undefined || stored.hashMap !== map || !Number.isFinite(value)) {
        // First update, storage reset, or a value prom-client must judge (it throws on NaN).
        histogram.observe(labels, value);
        map = stored.hashMap;
        entry = entryOf(stored, labels);
        return;
      }
      entry.sum += value;
      entry.count += 1;
      // prom-client counts a value in the first bucket whose bound is >= it (+Inf: only in count).
      for (let i = 0; i < bounds.length; i++) {
        if (value <= (bounds[i] as number)) {
          (entry.bucketValues[keys[i] as string] as number) += 1;
          return;
        }
      }
    },
  };
}

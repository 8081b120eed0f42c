// Plain-text report printing shared by the harnesses.
import type { CheckResult } from "./invariants.ts";

export type Printer = (line: string) => void;
export const stdoutPrinter: Printer = (line) => process.stdout.write(`${line}\n`);

export function section(print: Printer, title: string): void {
  print("");
  print(`== ${title} ${"=".repeat(Math.max(0, 70 - title.length))}`);
}

export function kv(print: Printer, rows: [string, string | number][]): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) print(`  ${k.padEnd(width)}  ${v}`);
}

export function table(print: Printer, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  for (const [n, r] of cells.entries()) {
    print(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")}`);
    if (n === 0) print(`  ${widths.map((w) => "-".repeat(w)).join("  ")}`);
  }
}

export function checks(print: Printer, results: CheckResult[]): void {
  for (const r of results) print(`  [${r.ok ? "PASS" : "FAIL"}] ${r.name}: ${r.detail}`);
}

/** p-th percentile (0..100) of a list of numbers (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

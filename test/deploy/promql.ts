// Metric names referenced by a PromQL expression, without a full parser: strings, label
// matchers, ranges and grouping clauses are removed, then every identifier that is not a
// function call, keyword or part of a number/duration is a series name. promtool checks the
// syntax separately; this only has to find names reliably in valid expressions.
const KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "inf",
  "nan",
  "atan2",
]);

export function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const before = stripped[m.index - 1] ?? " ";
    if (/[0-9.]/.test(before)) continue; // 1e3, 0x1f, 5m
    const after = stripped.slice(m.index + m[0].length).trimStart();
    if (after.startsWith("(")) continue; // function
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return names;
}

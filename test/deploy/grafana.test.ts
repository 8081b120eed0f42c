// deploy/grafana: every PromQL expression of the dashboard parses (wrapped in a temporary rules
// file for `promtool check rules`) and uses only metric names PayBridge exports; the panels the
// issue asks for are present; provisioning points at the dashboard.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  exportedMetricNames,
  isKnownSeries,
  promtoolPath,
  readText,
  readYaml,
  repoPath,
  run,
} from "./lib.ts";
import { metricNames } from "./promql.ts";

const DASHBOARD = "deploy/grafana/dashboards/paybridge.json";
/** Grafana's built-in variables, replaced by what they expand to at query time. */
const BUILTINS: Record<string, string> = { __rate_interval: "5m", __interval: "1m", __range: "1h" };

type Target = { refId: string; expr: string };
type Panel = {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
};
type Dashboard = {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
};

const dashboard = JSON.parse(readText(DASHBOARD)) as Dashboard;
const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels);
const variables = new Set(dashboard.templating.list.map((v) => v.name));

/** The expression as Prometheus receives it: built-ins expanded, dashboard variables to ".*". */
export function expand(expr: string, vars: ReadonlySet<string>): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (_, name: string) => {
    if (BUILTINS[name] !== undefined) return BUILTINS[name]!;
    if (vars.has(name)) return ".*";
    throw new Error(`unknown variable $${name} in ${expr}`);
  });
}

type Query = { where: string; expr: string };
function queries(d: Dashboard, ps: Panel[]): Query[] {
  const vars = new Set(d.templating.list.map((v) => v.name));
  const out: Query[] = ps.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      where: `panel ${p.id} "${p.title}" ${t.refId}`,
      expr: expand(t.expr, vars),
    })),
  );
  for (const v of d.templating.list) {
    const q = v.query as { query?: string } | undefined;
    const m = /^label_values\((.+),\s*\w+\)$/.exec(q?.query ?? "");
    if (m) out.push({ where: `variable ${v.name}`, expr: expand(m[1]!, vars) });
  }
  return out;
}

function unknownMetrics(qs: Query[]): string[] {
  const known = exportedMetricNames();
  return qs.flatMap((q) =>
    [...metricNames(q.expr)].filter((n) => !isKnownSeries(n, known)).map((n) => `${q.where}: ${n}`),
  );
}

describe("Grafana dashboard", () => {
  const qs = queries(dashboard, panels);

  test("has a stable uid, a data source variable and no overlapping panels", () => {
    expect(dashboard.uid).toBe("paybridge-overview");
    expect(variables).toContain("datasource");
    const cells = new Map<string, number>();
    for (const p of panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const key = `${x},${y}`;
          expect(cells.get(key), `panel ${p.id} overlaps panel ${cells.get(key)}`).toBeUndefined();
          cells.set(key, p.id);
        }
      }
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  });

  test("shows what the issue asks for", () => {
    const all = qs.map((q) => q.expr).join("\n");
    expect(all).toMatch(/rate\(paybridge_http_requests_total/); // request rate
    for (const q of ["0.5", "0.95", "0.99"])
      expect(all).toContain(
        `histogram_quantile(${q}, sum by (le) (rate(paybridge_http_request_duration_seconds_bucket`,
      );
    expect(all).toMatch(/status=~"5\.\."/); // error rate
    expect(all).toMatch(/sum by \(type, currency\) \(rate\(paybridge_business_transactions_total/);
    expect(all).toContain("paybridge_db_connections");
    expect(all).toContain("paybridge_business_users_total");
    expect(all).toContain("paybridge_outbox_pending_events");
  });

  test("every expression refers only to metric names PayBridge exports", () => {
    expect(qs.length).toBeGreaterThan(30);
    expect(unknownMetrics(qs)).toEqual([]);
  });

  test("the metric-name check catches a typo and ignores functions, labels and durations", () => {
    expect(
      [
        ...metricNames(
          'sum by (le) (rate(paybridge_http_request_duration_seconds_bucket{path!~"/a|b",le="0.5"}[5m])) / on (job) group_left max(up offset 5m) > bool 1e3',
        ),
      ].sort(),
    ).toEqual(["paybridge_http_request_duration_seconds_bucket", "up"]);
    expect(unknownMetrics([{ where: "typo", expr: "sum(rate(paybridge_http_request_total[5m]))" }])).toEqual([
      "typo: paybridge_http_request_total",
    ]);
    expect(() => expand("rate(x[$interval])", variables)).toThrow(/unknown variable/);
  });

  const promtool = promtoolPath();
  describe.skipIf(!promtool)("promtool", () => {
    const tmp = mkdtempSync(join(tmpdir(), "paybridge-dashboard-"));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));
    const check = (list: Query[]) => {
      const file = join(tmp, `q${Math.random().toString(36).slice(2)}.rules.yaml`);
      const rules = list.map((q, i) => ({ record: `dashboard:query:q${i}`, expr: q.expr }));
      writeFileSync(file, stringify({ groups: [{ name: "dashboard", rules }] }));
      return run([promtool!, "check", "rules", file]);
    };

    test("every PromQL expression parses (promtool check rules)", () => {
      const r = check(qs);
      expect(r.out).toContain(`SUCCESS: ${qs.length} rules found`);
      expect(r.code).toBe(0);
    });

    test("a broken expression is rejected (the check is live)", () => {
      expect(
        check([{ where: "x", expr: "sum by (le (rate(paybridge_http_requests_total[5m]))" }]).code,
      ).not.toBe(0);
    });
  });
  if (!promtool)
    console.warn("promtool not installed (`make tools` installs it): dashboard PromQL syntax check skipped");

  test("provisioning: data source and dashboard provider", () => {
    const ds = readYaml(repoPath("deploy/grafana/provisioning/datasources/prometheus.yaml")) as {
      datasources: { type: string; url: string }[];
    };
    expect(ds.datasources[0]!.type).toBe("prometheus");
    expect(ds.datasources[0]!.url).toBe("http://prometheus:9090");
    const prov = readYaml(repoPath("deploy/grafana/provisioning/dashboards/paybridge.yaml")) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(prov.providers[0]!.type).toBe("file");
    expect(prov.providers[0]!.options.path).toBe("/var/lib/grafana/dashboards");
  });
});

// deploy/prometheus: promtool check/test of the alert rules, coverage of every alert by a
// firing AND a not-firing unit test, mixin-style labels/annotations, runbook anchors that exist
// in docs/operations.md, metric names PayBridge exports, and the generated PrometheusRule.
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  EXTERNAL_METRICS,
  exportedMetricNames,
  isKnownSeries,
  listFiles,
  promtoolPath,
  readText,
  readYaml,
  repoPath,
  run,
  SPEC_METRICS,
  shippedSpecPath,
} from "./lib.ts";
import { metricNames } from "./promql.ts";
import { PROMETHEUS_RULE_FILE, renderPrometheusRule } from "./render-prometheusrule.ts";

const RULES = "deploy/prometheus/rules/paybridge.rules.yaml";
const TESTS_DIR = "deploy/prometheus/tests";
const SEVERITIES = ["critical", "warning", "info"];
const promtool = promtoolPath();
/** `promtool test rules` evaluates hours of samples (~3 s alone, more on a busy machine). */
const PROMTOOL_TEST_TIMEOUT_MS = 60_000;

type Rule = {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};
const rules = (readYaml(repoPath(RULES)).groups as { rules: Rule[] }[]).flatMap((g) => g.rules);
const alerts = rules.filter((r) => r.alert !== undefined);

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)) {
    anchors.add(
      m[1]!
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .trim()
        .replace(/\s/g, "-"),
    );
  }
  return anchors;
}

describe("Prometheus rules", () => {
  test("every alert has severity, summary, description and a runbook that exists", () => {
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    const anchors = headingAnchors(readText("docs/operations.md"));
    for (const a of alerts) {
      expect(SEVERITIES, a.alert).toContain(a.labels?.severity ?? "none");
      expect(a.annotations?.summary, a.alert).toBeString();
      expect(a.annotations?.description, a.alert).toBeString();
      const url = a.annotations?.runbook_url ?? "";
      expect(url, a.alert).toMatch(/\/docs\/operations\.md#[a-z0-9-]+$/);
      expect(anchors, `${a.alert}: ${url}`).toContain(url.split("#")[1]!);
    }
  });

  test("the issue's alerts are all there", () => {
    const exprs = alerts.map((a) => a.expr).join("\n");
    for (const needle of [
      /status=~"5\.\."/, // 5xx ratio
      /ratio_rate1h[\s\S]*ratio_rate5m/, // multi-window burn rate
      /paybridge_db_up == 0/,
      /paybridge_db_connections/,
      /paybridge_outbox_oldest_pending_age_seconds/,
      /paybridge_schema_version < paybridge_schema_expected_version/,
      /kube_pod_container_status_restarts_total/,
    ]) {
      expect(`${exprs}\n${rules.map((r) => r.expr).join("\n")}`).toMatch(needle);
    }
  });

  test("recording rules follow level:metric:operations and every name used is exported or recorded", () => {
    const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
    for (const r of recorded) expect(r).toMatch(/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
    const known = new Set<string>([...exportedMetricNames(), ...EXTERNAL_METRICS, ...recorded]);
    for (const r of rules)
      for (const name of metricNames(r.expr))
        expect(isKnownSeries(name, known), `${name} in ${r.alert ?? r.record}`).toBe(true);
  });

  test("each alert has a promtool unit test where it fires and one where it does not", () => {
    const cases = listFiles(repoPath(TESTS_DIR), ".yaml").flatMap((f) =>
      (readYaml(f).tests as { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[]).flatMap(
        (t) => t.alert_rule_test ?? [],
      ),
    );
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${a.alert} firing case`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${a.alert} not-firing case`,
      ).toBe(true);
    }
    const names = new Set(alerts.map((a) => a.alert));
    for (const c of cases) expect(names, `test for unknown alert ${c.alertname}`).toContain(c.alertname);
  });

  test("the PrometheusRule for prometheus-operator is the rules file (regenerate with render-prometheusrule.ts)", () => {
    expect(readText(PROMETHEUS_RULE_FILE)).toBe(renderPrometheusRule());
  });

  test("the SPEC §5.2 metric list used by these checks matches the shipped spec", () => {
    const spec = shippedSpecPath();
    if (!spec) {
      console.warn("../shared/SPEC.md not beside the repository: using the list in test/deploy/lib.ts");
      return;
    }
    const text = readFileSync(spec, "utf8");
    const section = text.slice(text.indexOf("### 5.2"), text.indexOf("### 5.3"));
    const named = new Set([...section.matchAll(/`(paybridge_[a-z0-9_]+)(?:\{[^}]*\})?`/g)].map((m) => m[1]!));
    expect([...named].sort()).toEqual([...SPEC_METRICS].sort());
  });

  describe.skipIf(!promtool)("promtool", () => {
    const tmp = mkdtempSync(join(tmpdir(), "paybridge-rules-"));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    test("promtool check rules accepts the rules", () => {
      const r = run([promtool!, "check", "rules", RULES]);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);
    });

    test(
      "promtool test rules: every unit test passes",
      () => {
        const files = listFiles(repoPath(TESTS_DIR), ".yaml");
        const r = run([promtool!, "test", "rules", ...files]);
        expect(r.out).not.toContain("FAILED");
        expect(r.code).toBe(0);
      },
      PROMTOOL_TEST_TIMEOUT_MS,
    );

    test("promtool check config accepts the local-stack Prometheus config", () => {
      const r = run([promtool!, "check", "config", "deploy/prometheus/prometheus.yml"]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/SUCCESS: [1-9]\d* rules found/);
    });

    test(
      "the unit tests fail when a threshold is broken (they can fail)",
      () => {
        cpSync(repoPath("deploy/prometheus"), join(tmp, "prometheus"), { recursive: true });
        const copy = join(tmp, "prometheus/rules/paybridge.rules.yaml");
        const text = readFileSync(copy, "utf8");
        const broken = text.replace(
          "namespace_job:paybridge_http_requests_5xx:ratio_rate5m > 0.05",
          "namespace_job:paybridge_http_requests_5xx:ratio_rate5m > 0.5",
        );
        expect(broken).not.toBe(text);
        writeFileSync(copy, broken);
        // Only the error-rate cases, to keep this quick.
        const testFile = join(tmp, "prometheus/tests/paybridge.rules.test.yaml");
        const suite = readYaml(testFile) as { tests: { alert_rule_test?: { alertname: string }[] }[] };
        suite.tests = suite.tests.filter((t) =>
          t.alert_rule_test?.some((c) => c.alertname === "PayBridgeHighErrorRate"),
        );
        expect(suite.tests.length).toBe(2);
        writeFileSync(testFile, stringify(suite));
        const r = run([promtool!, "test", "rules", testFile]);
        expect(r.code).not.toBe(0);
        expect(r.out).toContain("PayBridgeHighErrorRate");
      },
      PROMTOOL_TEST_TIMEOUT_MS,
    );

    test("promtool check rules rejects an invalid expression (the check is live)", () => {
      const bad = join(tmp, "bad.rules.yaml");
      writeFileSync(
        bad,
        "groups:\n  - name: x\n    rules:\n      - record: a:b:c\n        expr: sum by (job (rate(x[5m]))\n",
      );
      expect(run([promtool!, "check", "rules", bad]).code).not.toBe(0);
    });
  });
  if (!promtool) console.warn("promtool not installed (`make tools` installs it): promtool checks skipped");
});

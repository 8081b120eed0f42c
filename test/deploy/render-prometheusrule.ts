// Writes deploy/k8s/base/prometheusrule.yaml from deploy/prometheus/rules/paybridge.rules.yaml,
// so prometheus-operator clusters load exactly the rules promtool tests. Run after editing the
// rules:  bun test/deploy/render-prometheusrule.ts   (a test fails while the two differ).
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { readYaml, repoPath } from "./lib.ts";

export const PROMETHEUS_RULE_FILE = "deploy/k8s/base/prometheusrule.yaml";

export function renderPrometheusRule(): string {
  const rules = readYaml(repoPath("deploy/prometheus/rules/paybridge.rules.yaml"));
  const doc = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "paybridge",
      labels: {
        "app.kubernetes.io/name": "paybridge",
        "app.kubernetes.io/component": "api",
        "app.kubernetes.io/part-of": "paybridge",
      },
    },
    spec: { groups: rules.groups },
  };
  return `# GENERATED from deploy/prometheus/rules/paybridge.rules.yaml by
# \`bun test/deploy/render-prometheusrule.ts\` — edit the rules file, not this one.
# Most kube-prometheus-stack installs select rules by their release label: add it in an overlay.
${stringify(doc, { lineWidth: 0 })}`;
}

if (import.meta.main) {
  writeFileSync(repoPath(PROMETHEUS_RULE_FILE), renderPrometheusRule());
  console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
}

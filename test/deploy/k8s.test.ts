// deploy/k8s: schema validation (kubernetes-models) and cross-reference checks on the base and
// the production overlay, built here without kubectl.
import { describe, expect, test } from "bun:test";
import {
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config.ts";
import { type CheckContext, crossReferenceProblems } from "./k8s-checks.ts";
import { kustomizeBuild, podContainers, type Resource, resourceId, strategicMerge } from "./kustomize.ts";
import { configVarNames, isObject, listFiles, readYamlDocs, repoPath, run, servedProbePaths } from "./lib.ts";
import { unknownFields } from "./strict-fields.ts";

const BASE = repoPath("deploy/k8s/base");
const PRODUCTION = repoPath("deploy/k8s/overlays/production");

// biome-ignore lint/suspicious/noExplicitAny: the model constructors take loosely typed data
type Model = new (data: any) => { validate(): void };
const MODELS: Record<string, Model> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

function validate(r: Resource): void {
  const Ctor = MODELS[`${String(r.apiVersion)}/${r.kind}`];
  if (!Ctor)
    throw new Error(`${resourceId(r)}: no schema for ${String(r.apiVersion)} ${r.kind}; add it to MODELS`);
  new Ctor(r).validate();
}

const exampleSecrets = () => readYamlDocs(repoPath("deploy/k8s/base/secret.example.yaml")) as Resource[];
const probes = servedProbePaths();
const ctx = (): CheckContext => ({
  probePaths: probes.paths,
  configVars: configVarNames(),
  secrets: exampleSecrets(),
});
const byKind = (rs: Resource[], kind: string) => rs.find((r) => r.kind === kind)!;

describe("deploy/k8s manifests", () => {
  const base = kustomizeBuild(BASE);
  const production = kustomizeBuild(PRODUCTION);

  test("base and production overlay contain every required kind", () => {
    const kinds = (rs: Resource[]) => new Set(rs.map((r) => r.kind));
    for (const k of [
      "Deployment",
      "Service",
      "ServiceMonitor",
      "PrometheusRule",
      "PodDisruptionBudget",
      "HorizontalPodAutoscaler",
      "NetworkPolicy",
      "ConfigMap",
      "ServiceAccount",
    ]) {
      expect(kinds(base)).toContain(k);
      expect(kinds(production)).toContain(k);
    }
    expect(kinds(production)).toContain("Namespace");
    for (const r of production) if (r.kind !== "Namespace") expect(r.metadata.namespace).toBe("paybridge");
  });

  test("every YAML file under deploy/k8s validates against the Kubernetes / prometheus-operator schemas", () => {
    const files = listFiles(repoPath("deploy/k8s"), ".yaml").filter((f) => !f.endsWith("kustomization.yaml"));
    expect(files.length).toBeGreaterThan(8);
    for (const f of files) {
      for (const doc of readYamlDocs(f)) {
        if (f.includes("/patches/")) continue; // partial objects, validated after the merge below
        expect(() => validate(doc as Resource), f).not.toThrow();
      }
    }
    for (const r of production) expect(() => validate(r), resourceId(r)).not.toThrow();
  });

  test("no manifest has a field the Kubernetes / operator API does not declare (typos)", () => {
    const docs = listFiles(repoPath("deploy/k8s"), ".yaml")
      .filter((f) => !f.endsWith("kustomization.yaml") && !f.includes("/patches/"))
      .flatMap((f) => readYamlDocs(f));
    for (const r of [...docs, ...production]) expect(unknownFields(r)).toEqual([]);
    const typo = structuredClone(byKind(production, "Deployment"));
    strategicMerge(
      typo,
      { spec: { template: { spec: { containers: [{ name: "paybridge", readinesProbe: {} }] } } } } as never,
      "test",
    );
    (typo.spec as Record<string, unknown>).replica = 3;
    expect(unknownFields(typo)).toEqual([
      "Deployment/paybridge.spec.template.spec.containers[0].readinesProbe: unknown field",
      "Deployment/paybridge.spec.replica: unknown field",
    ]);
  });

  test("schema validation rejects a wrong type (the validator is live)", () => {
    const dep = structuredClone(byKind(production, "Deployment"));
    strategicMerge(
      dep,
      {
        spec: {
          template: { spec: { containers: [{ name: "paybridge", ports: [{ containerPort: "8080" }] }] } },
        },
      } as never,
      "test",
    );
    expect(() => validate(dep)).toThrow(/containerPort/);
  });

  test("cross-references hold in the base and the production overlay", () => {
    if (!probes.fromSource) {
      console.warn("probe routes not found in src/ yet: checking probe paths against SPEC §5.1 instead");
    }
    expect(crossReferenceProblems(base, ctx())).toEqual([]);
    expect(crossReferenceProblems(production, ctx())).toEqual([]);
  });

  test("the overlay pins one image for the migrator and the app, retagged from the base", () => {
    const images = new Set(podContainers(byKind(production, "Deployment")).map((c) => c.image));
    expect([...images]).toEqual(["registry.example.com/paybridge:0.1.0"]);
    const hpa = byKind(production, "HorizontalPodAutoscaler").spec as {
      minReplicas: number;
      maxReplicas: number;
    };
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.maxReplicas).toBeGreaterThan(hpa.minReplicas);
  });

  test("the ConfigMap with the example Secrets is a valid production configuration", () => {
    for (const rs of [base, production]) {
      const cm = byKind(rs, "ConfigMap").data as Record<string, string>;
      const [runtime, migrator] = exampleSecrets().map((s) => s.stringData as Record<string, string>);
      expect(cm.PAYBRIDGE_ENV).toBe("production");
      const serve = loadConfig({ ...cm, ...runtime }, "serve");
      expect(serve.env).toBe("production");
      expect(serve.managementPort).toBe(9090);
      expect(loadConfig({ ...cm, ...migrator }, "migrate").databaseUrl).toContain("paybridge_owner");
    }
  });

  describe("broken copies are caught", () => {
    const mutate = (fn: (rs: Resource[]) => void) => {
      const rs = structuredClone(production);
      fn(rs);
      return crossReferenceProblems(rs, ctx()).join("\n");
    };
    // biome-ignore lint/suspicious/noExplicitAny: the mutations poke into nested manifest objects
    const loose = (rs: Resource[], kind: string): any => byKind(rs, kind);
    const pod = (rs: Resource[]) => loose(rs, "Deployment").spec.template.spec;
    const app = (rs: Resource[]) => pod(rs).containers[0];
    const config = (rs: Resource[]) => loose(rs, "ConfigMap").data as Record<string, string>;
    const cases: [string, (rs: Resource[]) => void, RegExp][] = [
      [
        "probe path the app does not serve",
        (rs) => {
          app(rs).readinessProbe.httpGet.path = "/readyz";
        },
        /readinessProbe: path \/readyz is not served/,
      ],
      [
        "container port differs from PORT",
        (rs) => {
          app(rs).ports[0].containerPort = 3000;
        },
        /"http" is 3000, PORT is 8080/,
      ],
      [
        "MANAGEMENT_PORT differs from the container port",
        (rs) => {
          config(rs).MANAGEMENT_PORT = "9100";
        },
        /MANAGEMENT_PORT is 9100/,
      ],
      [
        "Service selector typo",
        (rs) => {
          loose(rs, "Service").spec.selector["app.kubernetes.io/name"] = "paybrige";
        },
        /Service paybridge: selector/,
      ],
      [
        "PDB selector typo",
        (rs) => {
          loose(rs, "PodDisruptionBudget").spec.selector.matchLabels["app.kubernetes.io/component"] = "web";
        },
        /PDB paybridge: selector/,
      ],
      [
        "grace period too short",
        (rs) => {
          pod(rs).terminationGracePeriodSeconds = 35;
        },
        /must exceed preStop 5 \+ SHUTDOWN_TIMEOUT_SECONDS 30/,
      ],
      [
        "shutdown timeout raised without the grace period",
        (rs) => {
          config(rs).SHUTDOWN_TIMEOUT_SECONDS = "60";
        },
        /SHUTDOWN_TIMEOUT_SECONDS 60/,
      ],
      [
        "migrator on another image",
        (rs) => {
          pod(rs).initContainers[0].image = "paybridge:old";
        },
        /init container image/,
      ],
      [
        "migrator runs something else",
        (rs) => {
          pod(rs).initContainers[0].args = ["migrate", "status"];
        },
        /must run `migrate up`/,
      ],
      [
        "unknown ConfigMap key",
        (rs) => {
          config(rs).DB_POOL_SIZE = "5";
        },
        /DB_POOL_SIZE is not read/,
      ],
      [
        "management port opened to everyone",
        (rs) => {
          loose(rs, "NetworkPolicy").spec.ingress[1].from = undefined;
        },
        /opens the management port/,
      ],
      [
        "writable root filesystem",
        (rs) => {
          app(rs).securityContext.readOnlyRootFilesystem = false;
        },
        /readOnlyRootFilesystem/,
      ],
    ];
    for (const [name, fn, expected] of cases) test(name, () => expect(mutate(fn)).toMatch(expected));
  });

  // Optional: the real kustomize, when a kubectl with kustomize v5 is installed (Debian's
  // kubectl 1.20 is too old; the tests above do not need it).
  const kubectl = Bun.which("kubectl");
  const kustomizeV5 =
    kubectl !== null && /Kustomize Version: v5/.test(run([kubectl, "version", "--client"]).out);
  test.skipIf(!kustomizeV5)("kubectl kustomize renders the same objects as the test's builder", () => {
    for (const [dir, ours] of [
      [BASE, base],
      [PRODUCTION, production],
    ] as const) {
      const r = run([kubectl!, "kustomize", dir]);
      expect(r.code).toBe(0);
      const theirs = parseAllDocuments(r.out)
        .map((d) => d.toJS() as Resource)
        .filter(isObject) as Resource[];
      const norm = (rs: readonly Resource[]) =>
        Object.fromEntries(rs.map((x) => [resourceId(x), sortKeys(x)]));
      expect(norm(ours)).toEqual(norm(theirs));
    }
  });
});

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObject(v))
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  return v;
}

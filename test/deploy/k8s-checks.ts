// Cross-reference checks over a built set of manifests: the things schema validation cannot
// see (ports vs. configuration, probe paths vs. routes, selectors vs. labels, shutdown budget,
// migrator image). Each returns human-readable problems; the tests expect none for the real
// manifests and specific ones for deliberately broken copies.

import type { Resource } from "./kustomize.ts";
import { isObject, type Json, type JsonObject } from "./lib.ts";

export const APP_CONTAINER = "paybridge";
export const MIGRATE_CONTAINER = "migrate";
export const RUNTIME_UID = 65532;
/** SPEC §5.4 / src/config.ts default when SHUTDOWN_TIMEOUT_SECONDS is not set. */
const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 30;
/** /ready bounds its database check at 2 s (SPEC §5.1); the probe must wait longer. */
const READY_DB_DEADLINE_SECONDS = 2;

export type CheckContext = {
  /** Routes the app serves for probes. */
  probePaths: ReadonlySet<string>;
  /** Variables src/config.ts reads. */
  configVars: ReadonlySet<string>;
  /** Secrets that exist outside the build (secret.example.yaml). */
  secrets: readonly Resource[];
};

const obj = (v: Json | undefined): JsonObject => (isObject(v) ? v : {});
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const find = (rs: readonly Resource[], kind: string) => rs.filter((r) => r.kind === kind);

/** Whether a label selector's matchLabels (or a plain map) selects the given labels. */
export function selects(selector: Json | undefined, labels: JsonObject): boolean {
  const s = obj(selector);
  const match = isObject(s.matchLabels) ? s.matchLabels : s;
  const entries = Object.entries(match);
  if (entries.length === 0 || s.matchExpressions !== undefined) return false;
  return entries.every(([k, v]) => labels[k] === v);
}

export function crossReferenceProblems(rs: readonly Resource[], ctx: CheckContext): string[] {
  const problems: string[] = [];
  const deployments = find(rs, "Deployment");
  if (deployments.length !== 1) return [`expected one Deployment, found ${deployments.length}`];
  const dep = deployments[0]!;
  const spec = obj(dep.spec);
  const template = obj(spec.template);
  const podLabels = obj(obj(template.metadata).labels);
  const pod = obj(template.spec);
  const containers = arr(pod.containers).map(obj);
  const inits = arr(pod.initContainers).map(obj);
  const app = containers.find((c) => c.name === APP_CONTAINER);
  const migrate = inits.find((c) => c.name === MIGRATE_CONTAINER);
  if (!app) return [`Deployment has no container "${APP_CONTAINER}"`];

  if (!selects(spec.selector, podLabels)) problems.push("Deployment selector does not match its pod labels");
  if (spec.replicas !== undefined && find(rs, "HorizontalPodAutoscaler").length > 0) {
    problems.push("Deployment sets replicas although an HPA owns the count");
  }

  // --- configuration: ConfigMaps and Secrets the pods read ---
  const configMaps = find(rs, "ConfigMap");
  const secretNames = new Set([...find(rs, "Secret"), ...ctx.secrets].map((s) => s.metadata.name));
  const envOf = (c: JsonObject): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const src of arr(c.envFrom).map(obj)) {
      const cmRef = obj(src.configMapRef).name;
      const secRef = obj(src.secretRef).name;
      if (cmRef !== undefined) {
        const cm = configMaps.find((m) => m.metadata.name === cmRef);
        if (!cm) problems.push(`container ${c.name}: ConfigMap ${String(cmRef)} does not exist`);
        else Object.assign(env, obj(cm.data));
      }
      if (secRef !== undefined && !secretNames.has(String(secRef))) {
        problems.push(`container ${c.name}: Secret ${String(secRef)} does not exist`);
      }
    }
    for (const e of arr(c.env).map(obj)) if (typeof e.value === "string") env[String(e.name)] = e.value;
    return env;
  };
  for (const cm of configMaps) {
    for (const key of Object.keys(obj(cm.data))) {
      if (!ctx.configVars.has(key))
        problems.push(`ConfigMap ${cm.metadata.name}: ${key} is not read by src/config.ts`);
    }
  }
  const env = envOf(app);
  if (migrate) envOf(migrate);

  // --- ports: PORT / MANAGEMENT_PORT ---
  const ports = arr(app.ports).map(obj);
  const portByName = new Map(ports.map((p) => [String(p.name), Number(p.containerPort)]));
  const apiPort = Number(env.PORT ?? 8080);
  if (portByName.get("http") !== apiPort) {
    problems.push(`container port "http" is ${portByName.get("http")}, PORT is ${apiPort}`);
  }
  const mgmt = env.MANAGEMENT_PORT === undefined ? undefined : Number(env.MANAGEMENT_PORT);
  if (mgmt !== undefined && portByName.get("management") !== mgmt) {
    problems.push(
      `container port "management" is ${portByName.get("management")}, MANAGEMENT_PORT is ${mgmt}`,
    );
  }
  const resolvePort = (p: Json | undefined) => (typeof p === "number" ? p : portByName.get(String(p)));

  // --- probes ---
  const probeSpecs: [string, string][] = [
    ["startupProbe", "/live"],
    ["livenessProbe", "/live"],
    ["readinessProbe", "/ready"],
  ];
  for (const [kind, expectedPath] of probeSpecs) {
    const probe = obj(app[kind]);
    const get = obj(probe.httpGet);
    if (get.path === undefined) {
      problems.push(`${kind}: missing httpGet`);
      continue;
    }
    if (!ctx.probePaths.has(String(get.path)))
      problems.push(`${kind}: path ${String(get.path)} is not served by the app`);
    if (get.path !== expectedPath)
      problems.push(`${kind}: must use ${expectedPath}, not ${String(get.path)}`);
    const port = resolvePort(get.port);
    if (port === undefined) problems.push(`${kind}: port ${String(get.port)} is not a container port`);
    else if (port !== (mgmt ?? apiPort))
      problems.push(`${kind}: port ${port} is not where probes are served (${mgmt ?? apiPort})`);
  }
  const readiness = obj(app.readinessProbe);
  if (Number(readiness.timeoutSeconds ?? 1) <= READY_DB_DEADLINE_SECONDS) {
    problems.push(
      `readinessProbe: timeoutSeconds must exceed the ${READY_DB_DEADLINE_SECONDS} s database check`,
    );
  }

  // --- shutdown budget (SPEC §5.4) ---
  const grace = Number(pod.terminationGracePeriodSeconds ?? 30);
  const preStop = obj(obj(app.lifecycle).preStop);
  const sleep = Number(obj(preStop.sleep).seconds ?? 0);
  if (preStop.sleep === undefined) problems.push("container has no preStop sleep");
  if (preStop.exec !== undefined)
    problems.push("preStop exec needs a shell or binary the distroless image lacks");
  const timeout = Number(env.SHUTDOWN_TIMEOUT_SECONDS ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS);
  if (!(grace > sleep + timeout)) {
    problems.push(
      `terminationGracePeriodSeconds ${grace} must exceed preStop ${sleep} + SHUTDOWN_TIMEOUT_SECONDS ${timeout}`,
    );
  }

  // --- migrator ---
  if (!migrate) problems.push(`no init container "${MIGRATE_CONTAINER}"`);
  else {
    if (migrate.image !== app.image)
      problems.push(`init container image ${String(migrate.image)} differs from ${String(app.image)}`);
    if (migrate.command !== undefined) problems.push("init container overrides the image ENTRYPOINT");
    if (JSON.stringify(migrate.args) !== JSON.stringify(["migrate", "up"]))
      problems.push("init container must run `migrate up`");
  }
  if (app.command !== undefined) problems.push("app container overrides the image ENTRYPOINT");
  if (JSON.stringify(app.args ?? ["serve"]) !== JSON.stringify(["serve"]))
    problems.push("app container must run `serve`");

  // --- security ---
  const podSec = obj(pod.securityContext);
  if (podSec.runAsNonRoot !== true || podSec.runAsUser !== RUNTIME_UID)
    problems.push(`pod must run as non-root ${RUNTIME_UID}`);
  if (obj(podSec.seccompProfile).type !== "RuntimeDefault")
    problems.push("pod seccompProfile must be RuntimeDefault");
  if (pod.automountServiceAccountToken !== false)
    problems.push("pod mounts a service account token it does not need");
  for (const c of [...inits, ...containers]) {
    const sc = obj(c.securityContext);
    const caps = obj(sc.capabilities);
    if (sc.allowPrivilegeEscalation !== false)
      problems.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${c.name}: readOnlyRootFilesystem must be true`);
    if (!arr(caps.drop).includes("ALL") || arr(caps.add).length > 0)
      problems.push(`${c.name}: must drop ALL capabilities`);
    const res = obj(c.resources);
    if (
      obj(res.requests).cpu === undefined ||
      obj(res.requests).memory === undefined ||
      obj(res.limits).memory === undefined
    ) {
      problems.push(`${c.name}: needs cpu/memory requests and a memory limit`);
    }
  }
  const sa = pod.serviceAccountName;
  if (sa !== undefined && !find(rs, "ServiceAccount").some((s) => s.metadata.name === sa)) {
    problems.push(`ServiceAccount ${String(sa)} does not exist`);
  }
  const spread = arr(pod.topologySpreadConstraints).map(obj);
  if (spread.length === 0) problems.push("pod has no topologySpreadConstraints");
  for (const t of spread)
    if (!selects(t.labelSelector, podLabels))
      problems.push(`topology spread on ${String(t.topologyKey)} does not select the pods`);

  // --- Service, PDB, HPA, NetworkPolicy, ServiceMonitor ---
  const services = find(rs, "Service");
  if (services.length === 0) problems.push("no Service");
  for (const svc of services) {
    const s = obj(svc.spec);
    if (!selects(s.selector, podLabels))
      problems.push(`Service ${svc.metadata.name}: selector does not match the pod labels`);
    for (const p of arr(s.ports).map(obj)) {
      if (resolvePort(p.targetPort ?? p.port) === undefined) {
        problems.push(
          `Service ${svc.metadata.name}: targetPort ${String(p.targetPort)} is not a container port`,
        );
      }
    }
  }
  const pdbs = find(rs, "PodDisruptionBudget");
  if (pdbs.length === 0) problems.push("no PodDisruptionBudget");
  for (const pdb of pdbs)
    if (!selects(obj(pdb.spec).selector, podLabels))
      problems.push(`PDB ${pdb.metadata.name}: selector does not match the pod labels`);
  const hpas = find(rs, "HorizontalPodAutoscaler");
  if (hpas.length === 0) problems.push("no HorizontalPodAutoscaler");
  for (const hpa of hpas) {
    const ref = obj(obj(hpa.spec).scaleTargetRef);
    if (ref.kind !== "Deployment" || ref.name !== dep.metadata.name)
      problems.push(`HPA ${hpa.metadata.name}: scaleTargetRef is not the Deployment`);
  }
  const policies = find(rs, "NetworkPolicy");
  if (mgmt !== undefined && policies.length === 0)
    problems.push("MANAGEMENT_PORT is used but no NetworkPolicy protects it");
  for (const np of policies) {
    const s = obj(np.spec);
    if (!selects(s.podSelector, podLabels))
      problems.push(`NetworkPolicy ${np.metadata.name}: podSelector does not match the pod labels`);
    for (const [i, rule] of arr(s.ingress).map(obj).entries()) {
      const rulePorts = arr(rule.ports).map((p) => resolvePort(obj(p).port));
      if (rulePorts.length === 0) problems.push(`NetworkPolicy ingress rule ${i} allows every port`);
      if (rulePorts.includes(undefined))
        problems.push(`NetworkPolicy ingress rule ${i} names a port the container lacks`);
      if (mgmt !== undefined && rulePorts.includes(mgmt)) {
        const from = arr(rule.from).map(obj);
        const restricted =
          from.length > 0 &&
          from.every(
            (f) =>
              f.ipBlock === undefined && (f.podSelector !== undefined || f.namespaceSelector !== undefined),
          );
        const prometheusOnly = from.every((f) => JSON.stringify(f).includes("prometheus"));
        if (!restricted || !prometheusOnly)
          problems.push(`NetworkPolicy ingress rule ${i} opens the management port beyond Prometheus`);
      }
    }
  }
  const monitors = find(rs, "ServiceMonitor");
  if (monitors.length === 0) problems.push("no ServiceMonitor");
  for (const sm of monitors) {
    const s = obj(sm.spec);
    const svc = services.find((x) => selects(s.selector, obj(x.metadata.labels)));
    if (!svc) {
      problems.push(`ServiceMonitor ${sm.metadata.name}: selects no Service`);
      continue;
    }
    for (const ep of arr(s.endpoints).map(obj)) {
      const sp = arr(obj(svc.spec).ports)
        .map(obj)
        .find((p) => p.name === ep.port);
      if (!sp) problems.push(`ServiceMonitor endpoint port ${String(ep.port)} is not a Service port`);
      else if (resolvePort(sp.targetPort) !== (mgmt ?? apiPort))
        problems.push("ServiceMonitor scrapes a port that does not serve /metrics");
      if ((ep.path ?? "/metrics") !== "/metrics")
        problems.push(`ServiceMonitor path ${String(ep.path)} is not /metrics`);
    }
  }
  return problems;
}

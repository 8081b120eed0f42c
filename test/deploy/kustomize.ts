// A small, strict re-implementation of the `kubectl kustomize` features this repository uses
// (resources, namespace, images, patch files as strategic merges). The tests build the overlay
// with it so they need no kubectl; any other kustomization field is refused, so a new feature
// in deploy/k8s/ cannot be silently ignored. When kubectl with kustomize v5 is installed a
// test compares both outputs.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { isObject, type Json, type JsonObject, readYaml, readYamlDocs } from "./lib.ts";

const SUPPORTED_FIELDS = new Set(["apiVersion", "kind", "resources", "namespace", "images", "patches"]);
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "PersistentVolume",
  "PriorityClass",
  "StorageClass",
]);
/** Strategic-merge keys of the lists the patches may touch (from the Kubernetes API types). */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "name",
  imagePullSecrets: "name",
  ports: "containerPort",
  topologySpreadConstraints: "topologyKey",
};

export type Resource = JsonObject & { kind: string; metadata: JsonObject & { name: string } };

export const resourceId = (r: Resource) =>
  `${r.kind}/${typeof r.metadata.namespace === "string" ? `${r.metadata.namespace}/` : ""}${r.metadata.name}`;

function asResource(doc: JsonObject, file: string): Resource {
  const md = doc.metadata;
  if (typeof doc.kind !== "string" || !isObject(md) || typeof md.name !== "string") {
    throw new Error(`${file}: every resource needs kind and metadata.name`);
  }
  return doc as Resource;
}

export function kustomizeBuild(dir: string): Resource[] {
  const kfile = join(dir, "kustomization.yaml");
  const k = readYaml(kfile);
  for (const field of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(field)) {
      throw new Error(`${kfile}: field "${field}" is not supported by test/deploy/kustomize.ts; extend it`);
    }
  }
  let out: Resource[] = [];
  for (const entry of asStrings(k.resources, `${kfile} resources`)) {
    const p = resolve(dir, entry);
    if (!existsSync(p)) throw new Error(`${kfile}: resource ${entry} does not exist`);
    if (statSync(p).isDirectory()) out.push(...kustomizeBuild(p));
    else out.push(...readYamlDocs(p).map((d) => asResource(d, p)));
  }
  out = structuredClone(out);

  for (const patch of asArray(k.patches, `${kfile} patches`)) {
    if (!isObject(patch) || typeof patch.path !== "string" || Object.keys(patch).length !== 1) {
      throw new Error(`${kfile}: only "- path: file" patches are supported`);
    }
    const file = resolve(dir, patch.path);
    for (const doc of readYamlDocs(file).map((d) => asResource(d, file))) {
      const targets = out.filter(
        (r) =>
          r.kind === doc.kind &&
          r.metadata.name === doc.metadata.name &&
          (doc.metadata.namespace === undefined || r.metadata.namespace === doc.metadata.namespace),
      );
      if (targets.length !== 1) {
        throw new Error(
          `${file}: patch for ${doc.kind}/${doc.metadata.name} matches ${targets.length} resources`,
        );
      }
      strategicMerge(targets[0]!, doc, file);
    }
  }

  if (k.namespace !== undefined) {
    if (typeof k.namespace !== "string") throw new Error(`${kfile}: namespace must be a string`);
    for (const r of out) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = k.namespace;
  }

  for (const img of asArray(k.images, `${kfile} images`)) {
    if (!isObject(img) || typeof img.name !== "string") throw new Error(`${kfile}: images need a name`);
    for (const r of out) for (const c of podContainers(r)) c.image = retag(String(c.image), img);
  }

  const seen = new Set<string>();
  for (const r of out) {
    const id = resourceId(r);
    if (seen.has(id)) throw new Error(`${kfile}: duplicate resource ${id}`);
    seen.add(id);
  }
  return out;
}

function asArray(v: Json | undefined, what: string): Json[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${what}: must be a list`);
  return v;
}

function asStrings(v: Json | undefined, what: string): string[] {
  return asArray(v, what).map((x) => {
    if (typeof x !== "string") throw new Error(`${what}: entries must be strings`);
    return x;
  });
}

/** Containers and init containers of a workload's pod template (empty for other kinds). */
export function podContainers(r: Resource): JsonObject[] {
  const spec = r.spec;
  if (!isObject(spec) || !isObject(spec.template) || !isObject(spec.template.spec)) return [];
  const pod = spec.template.spec;
  return [...asArray(pod.initContainers, "initContainers"), ...asArray(pod.containers, "containers")].filter(
    isObject,
  );
}

/** kustomize's image transformer: match on the name before any tag or digest. */
function retag(image: string, img: JsonObject): string {
  const at = image.indexOf("@");
  const noDigest = at >= 0 ? image.slice(0, at) : image;
  const colon = noDigest.lastIndexOf(":");
  const name = colon > noDigest.lastIndexOf("/") ? noDigest.slice(0, colon) : noDigest;
  if (name !== img.name) return image;
  const newName = typeof img.newName === "string" ? img.newName : name;
  if (typeof img.digest === "string") return `${newName}@${img.digest}`;
  if (typeof img.newTag === "string") return `${newName}:${img.newTag}`;
  return newName + image.slice(name.length);
}

/** In-place strategic merge of `patch` into `target` (maps merge, keyed lists merge, other lists replace). */
export function strategicMerge(target: JsonObject, patch: JsonObject, file: string): void {
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) throw new Error(`${file}: directive ${key} is not supported`);
    const current = target[key];
    if (value === null) delete target[key];
    else if (isObject(value) && isObject(current)) strategicMerge(current, value, file);
    else if (Array.isArray(value) && Array.isArray(current) && MERGE_KEYS[key] !== undefined) {
      const mk = MERGE_KEYS[key]!;
      for (const item of value) {
        if (!isObject(item) || item[mk] === undefined) throw new Error(`${file}: ${key} items need ${mk}`);
        const existing = current.find((c) => isObject(c) && c[mk] === item[mk]);
        if (isObject(existing)) strategicMerge(existing, item, file);
        else current.push(structuredClone(item));
      }
    } else target[key] = structuredClone(value);
  }
}

// Unknown-field check for manifests. The kubernetes-models validators accept fields the API
// does not know (a typo such as `readinesProbe` passes silently and is dropped by the API
// server), so this walks each object along the models' TypeScript declarations and reports
// every key that no declared interface has. Maps (`labels`, `data`) and scalar aliases
// (Quantity, IntOrString) are leaves.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { isObject, REPO } from "./lib.ts";

type Field = { file: string | undefined };
const NODE_MODULES = join(REPO, "node_modules");
const shapes = new Map<string, Map<string, Field> | null>();

function declarationFile(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com")
    return join(NODE_MODULES, "@kubernetes-models/prometheus-operator", group, version!, `${kind}.d.ts`);
  return join(NODE_MODULES, "kubernetes-models", group ? `${group}/${version}` : version!, `${kind}.d.ts`);
}

function resolveImport(from: string, spec: string): string {
  const base = spec.startsWith(".") ? resolve(dirname(from), spec) : join(NODE_MODULES, spec);
  return `${base.replace(/\.js$/, "")}.d.ts`;
}

/** Declared properties of the first interface in a .d.ts (null: a type alias, i.e. a leaf). */
function shape(file: string): Map<string, Field> | null {
  const cached = shapes.get(file);
  if (cached !== undefined) return cached;
  const text = readFileSync(file, "utf8");
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g))
    imports.set(m[1]!, resolveImport(file, m[2]!));
  const start = text.search(/export interface I\w+(?: extends [\w, ]+)? \{\n/);
  let result: Map<string, Field> | null = null;
  if (start >= 0) {
    result = new Map();
    const body = text.slice(text.indexOf("{\n", start) + 2, text.indexOf("\n}", start));
    for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.+)$/gm)) {
      const type = m[2]!.replace(/;$/, "");
      const ref = /^(?:Array<)?(\w+)>?$/.exec(type)?.[1];
      result.set(m[1]!, { file: ref !== undefined ? imports.get(ref) : undefined });
    }
  }
  shapes.set(file, result);
  return result;
}

function walk(value: unknown, file: string, path: string, problems: string[]): void {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) walk(v, file, `${path}[${i}]`, problems);
    return;
  }
  const fields = shape(file);
  if (fields === null || !isObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const f = fields.get(key);
    if (!f) problems.push(`${path}.${key}: unknown field`);
    else if (f.file !== undefined) walk(child, f.file, `${path}.${key}`, problems);
  }
}

/** Unknown fields of one manifest, as `Kind/name.spec.x.y: unknown field`. */
export function unknownFields(manifest: Record<string, unknown>): string[] {
  const file = declarationFile(String(manifest.apiVersion), String(manifest.kind));
  if (!existsSync(file))
    return [`${String(manifest.kind)}: no declarations for ${String(manifest.apiVersion)}`];
  const problems: string[] = [];
  const md = isObject(manifest.metadata) ? manifest.metadata : {};
  walk(manifest, file, `${String(manifest.kind)}/${String(md.name)}`, problems);
  return problems;
}

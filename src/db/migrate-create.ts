// `paybridge migrate create NAME` (source checkout only): writes the next numbered migration
// module + SQL pair and registers it in src/db/registry.ts before the `// @registry-end`
// marker, so the static registry and the files on disk never disagree.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const MIGRATION_NAME_PATTERN = /^[a-z0-9_]{1,60}$/;
export const REGISTRY_END_MARKER = "// @registry-end";

export class CreateMigrationError extends Error {
  override name = "CreateMigrationError";
}

/** The checkout root when running from source; null inside the compiled binary. */
export function sourceRoot(): string | null {
  // In a `bun build --compile` binary every module lives under /$bunfs/; there is no
  // migrations folder to write to.
  if (import.meta.dir.includes("$bunfs") || import.meta.dir.startsWith("B:/~BUN")) return null;
  const root = resolve(import.meta.dir, "..", "..");
  return existsSync(join(root, "src", "db", "registry.ts")) && existsSync(join(root, "migrations"))
    ? root
    : null;
}

export function pad5(n: number): string {
  return String(n).padStart(5, "0");
}

/** The next free version: one above every migration on disk or in the registry. */
export function nextVersion(migrationFiles: readonly string[], registryText: string): number {
  let max = 0;
  for (const f of migrationFiles) {
    const m = /^(\d{5})_/.exec(f);
    if (m) max = Math.max(max, Number(m[1]));
  }
  for (const m of registryText.matchAll(/version:\s*(\d+)/g)) max = Math.max(max, Number(m[1]));
  return max + 1;
}

/** Inserts the import and the registry entry; pure, so it is unit-tested on text. */
export function registerInText(registryText: string, version: number, name: string): string {
  const id = `${pad5(version)}_${name}`;
  const lines = registryText.split("\n");
  const endIdx = lines.findIndex((l) => l.includes(REGISTRY_END_MARKER));
  if (endIdx === -1)
    throw new CreateMigrationError(`src/db/registry.ts has no "${REGISTRY_END_MARKER}" marker`);
  const indent = /^\s*/.exec(lines[endIdx]!)?.[0] ?? "  ";
  lines.splice(endIdx, 0, `${indent}{ name: "${id}.ts", version: ${version}, module: m${pad5(version)} },`);
  let lastImport = -1;
  lines.forEach((l, i) => {
    if (/^import \* as m\d{5} from "\.\.\/\.\.\/migrations\//.test(l)) lastImport = i;
  });
  if (lastImport === -1) lastImport = lines.findIndex((l) => l.startsWith("import ")) - 1;
  lines.splice(lastImport + 1, 0, `import * as m${pad5(version)} from "../../migrations/${id}.ts";`);
  return lines.join("\n");
}

export function moduleText(id: string): string {
  return `import type { Sql } from "../src/db/client.ts";
import downSql from "./sql/${id}.down.sql" with { type: "text" };
import upSql from "./sql/${id}.up.sql" with { type: "text" };

export const source = { up: upSql, down: downSql };
export const up = (sql: Sql) => sql.unsafe(upSql);
export const down = (sql: Sql) => sql.unsafe(downSql);
`;
}

/** Writes the files; returns the paths written, relative to root. */
export function createMigration(root: string, name: string): string[] {
  if (!MIGRATION_NAME_PATTERN.test(name)) {
    throw new CreateMigrationError(`NAME must match [a-z0-9_]{1,60} (got "${name.slice(0, 80)}")`);
  }
  const registryPath = join(root, "src", "db", "registry.ts");
  const registryText = readFileSync(registryPath, "utf8");
  const files = readdirSync(join(root, "migrations"));
  if (files.some((f) => f.replace(/^\d{5}_/, "") === `${name}.ts`)) {
    throw new CreateMigrationError(`a migration named "${name}" already exists`);
  }
  const version = nextVersion(files, registryText);
  const id = `${pad5(version)}_${name}`;
  const updated = registerInText(registryText, version, name);
  const written = [`migrations/${id}.ts`, `migrations/sql/${id}.up.sql`, `migrations/sql/${id}.down.sql`];
  writeFileSync(join(root, "migrations", "sql", `${id}.up.sql`), `-- ${id}: describe the change.\n`, {
    flag: "wx",
  });
  writeFileSync(join(root, "migrations", "sql", `${id}.down.sql`), `-- ${id}: undo the change.\n`, {
    flag: "wx",
  });
  writeFileSync(join(root, "migrations", `${id}.ts`), moduleText(id), { flag: "wx" });
  writeFileSync(registryPath, updated);
  return [...written, "src/db/registry.ts"];
}

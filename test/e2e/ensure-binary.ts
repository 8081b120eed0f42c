// The end-to-end tests run the compiled executable. `make test` builds it first; when it is
// missing or older than the sources (a bare `bun test`), build it here.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "dist", "paybridge");

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const entry of readdirSync(path)) max = Math.max(max, newestMtime(join(path, entry)));
  return max;
}

export function binaryIsStale(): boolean {
  if (!existsSync(BINARY)) return true;
  const built = statSync(BINARY).mtimeMs;
  const sources = ["src", "migrations", "package.json", "bun.lock"]
    .map((p) => join(ROOT, p))
    .filter(existsSync);
  return sources.some((p) => newestMtime(p) > built);
}

/** Builds dist/paybridge with `make build` when needed; returns its path. */
export function ensureBinary(): string {
  if (binaryIsStale()) {
    const r = Bun.spawnSync(["make", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) {
      throw new Error(`make build failed (exit ${r.exitCode}): ${r.stderr.toString().slice(-2000)}`);
    }
  }
  return BINARY;
}

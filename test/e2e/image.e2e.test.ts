// The runtime-stage proof (scripts/image-check.sh): the binary alone in an empty root with
// only its glibc libraries, /proc mounted, uid 65532, read-only root. Needs root.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPECTED_SCHEMA_VERSION } from "../../src/db/registry.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { ensureBinary, ROOT } from "./ensure-binary.ts";

const SCRIPT = join(ROOT, "scripts", "image-check.sh");
/** Includes a possible `make build`. */
const IMAGE_TEST_TIMEOUT_MS = 180_000;
const isRoot = process.getuid?.() === 0;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, IMAGE_TEST_TIMEOUT_MS);

function run(args: string[], env: Record<string, string>) {
  const r = Bun.spawnSync(["bash", SCRIPT, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

function leftoverMounts(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes("pb-image-root"));
}

describe.skipIf(!isRoot)("runtime stage (distroless nonroot) assumptions", () => {
  test(
    "version and migrate status run as uid 65532 from a read-only root with only glibc",
    async () => {
      const binary = ensureBinary();
      const db: TestDatabase = await createTestDatabase("pbimage");
      cleanups.push(() => db.drop());
      const r = run([binary], { IMAGE_CHECK_DATABASE_URL: db.url });
      if (r.code !== 0) console.error(r.out, r.err);
      expect(r.code).toBe(0);
      expect(r.out).toContain("(uid 65532, read-only root)");
      expect(r.out).toMatch(/^paybridge \d+\.\d+\.\d+$/m);
      expect(r.out).toContain(`version ${EXPECTED_SCHEMA_VERSION}; 0 pending`);
      expect(r.out).toContain("image-check: OK");
      expect(r.out).toMatch(/libc\.so\.6/);
      expect(leftoverMounts()).toEqual([]);
    },
    IMAGE_TEST_TIMEOUT_MS,
  );

  test(
    "fails (non-zero) for something that is not a dynamically linked executable, and cleans up",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "pb-image-neg-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const fake = join(dir, "paybridge");
      writeFileSync(fake, "#!/bin/sh\necho paybridge 0.0.0\n");
      chmodSync(fake, 0o755);
      const r = run([fake], { IMAGE_CHECK_DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" });
      expect(r.code).not.toBe(0);
      expect(r.err).toContain("image-check:");
      expect(leftoverMounts()).toEqual([]);
      expect(run([], {}).code).toBe(2);
    },
    IMAGE_TEST_TIMEOUT_MS,
  );
});

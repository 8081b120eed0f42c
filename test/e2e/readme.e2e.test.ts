// The README's curl tour is run as written, against the compiled binary and a fresh
// database: a user reading the README gets exactly what it says it prints.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { ensureBinary, ROOT } from "./ensure-binary.ts";

let db: TestDatabase;

beforeAll(async () => {
  ensureBinary();
  db = await createTestDatabase("pbreadme");
}, 120_000);
afterAll(async () => {
  await db?.drop();
});

function tourScript(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const m = /<!-- readme-tour:start -->\n```sh\n([\s\S]*?)```\n<!-- readme-tour:end -->/.exec(readme);
  if (!m?.[1]) throw new Error("README.md has no readme-tour block");
  return m[1];
}

test("the README's curl tour prints what the README says", async () => {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  // Whatever happens, the server the script starts in the background is stopped.
  const script = `trap 'kill $(jobs -p) 2>/dev/null' EXIT\nset -e\n${tourScript()}`;
  const p = Bun.spawn(["bash", "-c", script], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/tmp",
      PORT: String(port),
      DATABASE_URL: db.url,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  if (code !== 0) console.error(err);
  expect(code).toBe(0);
  expect(out.trim().split("\n")).toEqual([
    '"100.00"',
    '["COMPLETED","74.50","25.50"]',
    '["COMPLETED","74.50","25.50"]',
    '["COMPLETED","18.00"]',
    '["-7.50","25.50"]',
    "ok",
  ]);
}, 120_000);

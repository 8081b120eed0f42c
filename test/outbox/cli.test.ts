// `paybridge relay requeue` and the relay's usage errors, as a user runs them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { relayCommand } from "../../src/cli/relay.ts";
import { UsageError } from "../../src/cli/usage.ts";
import type { Sql } from "../../src/db/client.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";
import { connectSql, insertUsers, outboxCounts, writeRounds } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../../src/main.ts");
let db: TestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase("pbrelaycli");
  sql = connectSql(db.url, 2);
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.drop();
});

/** Runs the subcommand in-process (main.ts maps UsageError to exit 2), capturing stdout. */
async function run(...args: string[]) {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    const code = await relayCommand(args, { DATABASE_URL: db.url, PAYBRIDGE_ENV: "test" });
    return { code, stdout: out.join("") };
  } finally {
    process.stdout.write = write;
  }
}

test.each([
  [["--bogus"], "unexpected argument"],
  [["--nats-stream"], "--nats-stream needs a value"],
  [["--nats-stream", "bad name!"], "--nats-stream"],
  [["requeue"], "requeue needs --all or one or more event ids"],
  [["requeue", "--all", "0b9e3a0c-6f2d-4b8e-9d43-5a7c2e1f9b10"], "not both"],
  [["requeue", "nope"], "is not an event id"],
])("relay %p is a usage error (exit 2)", async (args, message) => {
  const err = await run(...args).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UsageError);
  expect((err as Error).message).toContain(message);
});

test("relay requeue puts FAILED events back (by id, then --all)", async () => {
  const users = await insertUsers(sql, 2);
  await writeRounds(sql, users, 2);
  await sql`UPDATE outbox SET status = 'FAILED', attempts = 10`;
  const [one] = await sql<{ id: string }[]>`SELECT id FROM outbox ORDER BY position LIMIT 1`;
  const byId = await run("requeue", one?.id as string);
  expect(byId).toMatchObject({ code: 0, stdout: "requeued 1 event(s)\n" });
  const all = await run("requeue", "--all");
  expect(all).toMatchObject({ code: 0, stdout: "requeued 3 event(s)\n" });
  expect(await outboxCounts(sql)).toMatchObject({ PENDING: 4, FAILED: 0 });
});

test("relay with an invalid NATS_URL is a configuration error (exit 1), nothing leaks", async () => {
  // A real process: the exit code and stderr an operator sees.
  const p = Bun.spawn([process.execPath, MAIN, "relay"], {
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.url, NATS_URL: "http://user:secret@host" },
    stderr: "pipe",
  });
  const [code, stderr] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  expect(code).toBe(1);
  expect(stderr).toContain("NATS_URL");
  expect(stderr).not.toContain("secret");
}, 30_000);

// A throw-away PostgreSQL 15 cluster for the harnesses: initdb into a temp dir, its own free
// port, trust authentication on 127.0.0.1 only. The harness may restart or stop it at will
// (fault injection); the shared cluster on :5432 is never touched. Always call destroy().
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort, waitFor } from "./net.ts";

export const PG_BIN = "/usr/lib/postgresql/15/bin";
/** pg_ctl -w waits at most this long for start/stop (the machine may be loaded). */
const PG_CTL_TIMEOUT_SECONDS = 120;
const START_ATTEMPTS = 3;

export type StopMode = "smart" | "fast" | "immediate";

function idOf(flag: "-u" | "-g"): number {
  return Number(Bun.spawnSync(["id", flag, "postgres"]).stdout.toString().trim());
}

export class PgCluster {
  readonly dir: string;
  readonly dataDir: string;
  port = 0;
  private readonly asRoot = process.getuid?.() === 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.dataDir = join(dir, "data");
  }

  /** initdb + start. `maxConnections` leaves room for serve, relay and the harness. */
  static async create(opts: { maxConnections?: number } = {}): Promise<PgCluster> {
    const dir = mkdtempSync(join(tmpdir(), "pb-harness-pg-"));
    const c = new PgCluster(dir);
    try {
      if (c.asRoot) chownSync(dir, idOf("-u"), idOf("-g"));
      c.run([
        `${PG_BIN}/initdb`,
        "-D",
        c.dataDir,
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
      ]);
      for (let attempt = 1; ; attempt++) {
        c.port = freePort();
        try {
          c.pgCtl([
            "-o",
            `-p ${c.port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off ` +
              `-c max_connections=${opts.maxConnections ?? 100} -c shared_buffers=64MB`,
            "start",
          ]);
          break;
        } catch (err) {
          if (attempt >= START_ATTEMPTS) throw err;
        }
      }
      await c.admin(async (sql) => {
        await sql`CREATE DATABASE paybridge`;
      });
      return c;
    } catch (err) {
      c.destroy();
      throw err;
    }
  }

  url(db = "paybridge"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  private run(args: string[]): string {
    const cmd = this.asRoot ? ["runuser", "-u", "postgres", "--", ...args] : args;
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) {
      throw new Error(`${args[0]} ${args.at(-1)} failed: ${r.stderr.toString()}${r.stdout.toString()}`);
    }
    return r.stdout.toString();
  }

  private pgCtl(args: string[]): void {
    this.run([
      `${PG_BIN}/pg_ctl`,
      "-D",
      this.dataDir,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-t",
      String(PG_CTL_TIMEOUT_SECONDS),
      ...args,
    ]);
  }

  /** Restart: `fast` aborts open transactions cleanly, `immediate` is a crash + WAL recovery. */
  async restart(mode: Exclude<StopMode, "smart"> = "fast"): Promise<void> {
    this.pgCtl(["-m", mode, "restart"]);
    await this.waitReady();
  }

  stop(mode: StopMode = "fast"): void {
    this.pgCtl(["-m", mode, "stop"]);
  }

  start(): void {
    this.pgCtl(["start"]);
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      "throw-away PostgreSQL to accept connections",
      async () => {
        await this.admin(async (sql) => {
          await sql`SELECT 1`;
        });
        return true;
      },
      timeoutMs,
      200,
    );
  }

  /** A short-lived admin connection (one at a time, closed afterwards). */
  async admin<T>(fn: (sql: postgres.Sql) => Promise<T>, db = "postgres"): Promise<T> {
    const sql = postgres(this.url(db), { max: 1, onnotice: () => {}, connect_timeout: 10 });
    try {
      return await fn(sql);
    } finally {
      await sql.end({ timeout: 2 }).catch(() => {});
    }
  }

  /** Stops the server (immediate: nothing to keep) and removes the directory. */
  destroy(): void {
    try {
      this.pgCtl(["-m", "immediate", "stop"]);
    } catch {
      // not running
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

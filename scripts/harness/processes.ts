// The compiled binary under test, run as child processes the harness can SIGKILL and restart.
// The binary is copied to a private path first: other builds may replace dist/paybridge while
// a long run is going on, and a restart must start the same program.
import { copyFileSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ensureBinary } from "../../test/e2e/ensure-binary.ts";
import { freePort, sleep, waitFor } from "./net.ts";

/** How long a (re)started serve may take to answer /live on a loaded machine. */
const START_TIMEOUT_MS = 60_000;
const LISTEN_ATTEMPTS = 3;

export type Binary = { path: string; dir: string; cleanup: () => void };

export function privateBinary(): Binary {
  const built = ensureBinary();
  const dir = mkdtempSync(join(tmpdir(), "pb-harness-bin-"));
  const path = join(dir, "paybridge");
  copyFileSync(built, path);
  Bun.spawnSync(["chmod", "755", path]);
  return { path, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `paybridge <args>` to completion; throws with its stderr on a non-zero exit. */
export function runOnce(bin: Binary, args: string[], env: Record<string, string>): string {
  const r = Bun.spawnSync([bin.path, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0)
    throw new Error(`paybridge ${args.join(" ")} exit ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** A long-running subcommand (serve or relay) that can be killed and started again. */
export class ManagedProcess {
  proc: Subprocess | undefined;
  starts = 0;
  kills = 0;
  constructor(
    readonly name: string,
    private readonly bin: Binary,
    private readonly args: string[],
    readonly env: Record<string, string>,
    private readonly ready?: () => Promise<boolean>,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    const log = openSync(join(this.bin.dir, `${this.name}.log`), "a");
    this.proc = Bun.spawn([this.bin.path, ...this.args], {
      env: { PATH: process.env.PATH ?? "", ...this.env },
      stdout: log,
      stderr: log,
    });
    this.starts++;
    if (this.ready !== undefined) {
      const proc = this.proc;
      await waitFor(
        `${this.name} to become ready`,
        async () => {
          if (proc.exitCode !== null) throw new Error(`${this.name} exited with ${proc.exitCode}`);
          return await this.ready!();
        },
        START_TIMEOUT_MS,
        50,
      );
    }
  }

  /** SIGKILL: no drain, no pool close, in-flight transactions die with their connections. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null) return;
    p.kill("SIGKILL");
    await p.exited;
    this.kills++;
  }

  /** SIGTERM and wait; returns the exit code. */
  async stop(): Promise<number | null> {
    const p = this.proc;
    if (p === undefined || p.exitCode !== null) return p?.exitCode ?? null;
    p.kill("SIGTERM");
    const code = await Promise.race([p.exited, sleep(30_000).then(() => null)]);
    if (code === null) {
      p.kill("SIGKILL");
      await p.exited;
    }
    return code;
  }

  alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null;
  }

  logPath(): string {
    return join(this.bin.dir, `${this.name}.log`);
  }
}

export type ServeHandle = { proc: ManagedProcess; baseUrl: string; port: number };

/** Starts `paybridge serve` on a free port (retrying on a port clash) and waits for /live. */
export async function startServe(
  bin: Binary,
  env: Record<string, string>,
  name = "serve",
): Promise<ServeHandle> {
  let lastErr: unknown;
  for (let attempt = 1; attempt <= LISTEN_ATTEMPTS; attempt++) {
    const port = freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const proc = new ManagedProcess(
      name,
      bin,
      ["serve"],
      { ...env, PORT: String(port), HOST: "127.0.0.1" },
      async () => {
        const r = await fetch(`${baseUrl}/live`, { signal: AbortSignal.timeout(2000) });
        return r.status === 200;
      },
    );
    try {
      await proc.start();
      return { proc, baseUrl, port };
    } catch (err) {
      lastErr = err;
      await proc.kill();
    }
  }
  throw lastErr;
}

/** Reads VmRSS of a process in KiB from /proc (undefined when it is gone). */
export async function rssKiB(pid: number): Promise<number | undefined> {
  try {
    const status = await Bun.file(`/proc/${pid}/status`).text();
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

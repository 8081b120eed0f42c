// Runs `paybridge serve` (the compiled binary) as an operator would and waits for its
// "listening" log line to learn the port (PORT=0: the kernel picks a free one).
import type { Subprocess } from "bun";
import { ensureBinary } from "../e2e/ensure-binary.ts";

export type Served = {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  stderr: () => string;
  stdout: () => string;
  stop: () => Promise<number>;
};

/** The binary under test: dist/paybridge (built when stale), or PAYBRIDGE_E2E_BINARY. */
export function binaryPath(): string {
  return process.env.PAYBRIDGE_E2E_BINARY ?? ensureBinary();
}

export type Exited = { exitCode: number; stdout: string; stderr: string };

/** How long a start may take before the test gives up (a cold binary starts in ~150 ms). */
const START_TIMEOUT_MS = 20_000;
const MAX_KEPT_OUTPUT_CHARS = 64 * 1024;

function baseEnv(env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    LOG_LEVEL: "info",
    ...env,
  };
}

/** Runs the binary to completion (for refusals: it must exit by itself). */
export async function runBinary(args: string[], env: Record<string, string>): Promise<Exited> {
  const proc = Bun.spawn([binaryPath(), ...args], { env: baseEnv(env), stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), START_TIMEOUT_MS);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(killer);
  return { exitCode, stdout, stderr };
}

export async function startServe(env: Record<string, string>): Promise<Served> {
  const proc = Bun.spawn([binaryPath(), "serve"], {
    env: baseEnv({ PORT: "0", HOST: "127.0.0.1", ...env }),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let err = "";
  void (async () => {
    for await (const chunk of proc.stderr)
      err = (err + new TextDecoder().decode(chunk)).slice(-MAX_KEPT_OUTPUT_CHARS);
  })();
  const port = await new Promise<number>((resolve, reject) => {
    // A serve that never reports "listening" is killed, never left running after the test.
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`serve did not start: ${err}${out}`));
    }, START_TIMEOUT_MS);
    let found = false;
    let partial = "";
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stdout) {
        const text = decoder.decode(chunk);
        // Keep a bounded tail of the output for failure messages (access logs can be long).
        out = (out + text).slice(-MAX_KEPT_OUTPUT_CHARS);
        if (found) continue;
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          if (!line.startsWith("{")) continue;
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === "listening" && typeof rec.port === "number") {
            found = true;
            clearTimeout(timer);
            resolve(rec.port);
          }
        }
      }
      clearTimeout(timer);
      if (!found)
        reject(new Error(`serve exited before listening (code ${await proc.exited}): ${err}${out}`));
    })();
  });
  return {
    proc,
    port,
    stderr: () => err,
    stdout: () => out,
    stop: async () => {
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), START_TIMEOUT_MS);
      const code = await proc.exited;
      clearTimeout(killer);
      return code;
    },
  };
}

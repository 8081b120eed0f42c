// Small process/network helpers shared by the harnesses.
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A port that was free a moment ago (bind to 0, read, release). Callers retry on a clash. */
export function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port as number;
  s.stop(true);
  return p;
}

/** Polls `check` every `intervalMs` until it returns true or `timeoutMs` passes. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function elapsedSeconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

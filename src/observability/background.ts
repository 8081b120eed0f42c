// Background loops owned by `serve` (outbox relay, hold sweeper, reconciler): started after
// the listener is up and stopped during shutdown, after the listener stopped and in-flight
// requests finished, each allowed to finish its current batch.
//
// A feature registers by returning a BackgroundTask from its start function, e.g.
//   background(() => startRelay({ config, sql, logger, metrics }), "outbox-relay")
// and the lead adds it to `backgroundTasks()` in src/cli/serve.ts.

export type BackgroundTask = {
  name: string;
  start(): void | Promise<void>;
  stop(): Promise<void>;
};

/** Adapts the common `start…(deps) → { stop() }` shape into a BackgroundTask. */
export function background(
  start: () => { stop(): Promise<void> } | Promise<{ stop(): Promise<void> }>,
  name: string,
): BackgroundTask {
  let handle: { stop(): Promise<void> } | undefined;
  return {
    name,
    async start() {
      handle = await start();
    },
    async stop() {
      const h = handle;
      handle = undefined;
      await h?.stop();
    },
  };
}

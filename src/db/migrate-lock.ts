// The migration lock: a session-level advisory lock taken by POLLING pg_try_advisory_lock on
// one reserved connection. A blocking pg_advisory_lock would deadlock against a
// `CREATE INDEX CONCURRENTLY` run by the migrator holding the lock (CIC waits for every
// running statement, including a blocked lock call), so waiting is done client-side.
import type postgres from "postgres";

/** Advisory lock key reserved for PayBridge migrations ("PB" + "MIGR" in spirit, just unique). */
export const MIGRATION_LOCK_KEY = 7_341_902_117n;
/** How often a waiting migrator retries the lock. */
export const LOCK_POLL_INTERVAL_MS = 200;
/** How often a waiting migrator says it is still waiting. */
export const LOCK_WAIT_LOG_EVERY_MS = 5_000;

export type Conn = postgres.ReservedSql<Record<string, never>>;

export class MigrationLockTimeoutError extends Error {
  constructor(seconds: number) {
    super(`timed out after ${seconds} s waiting for the migration lock (another migrator still holds it)`);
    this.name = "MigrationLockTimeoutError";
  }
}

/** Waits for the lock at most `timeoutSeconds`; logs a line while waiting. */
export async function acquireMigrationLock(
  conn: Conn,
  timeoutSeconds: number,
  log: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let lastLog = 0;
  for (;;) {
    const [row] = await conn<
      { locked: boolean }[]
    >`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY.toString()}::bigint) AS locked`;
    if (row?.locked === true) return;
    const now = Date.now();
    if (now >= deadline) throw new MigrationLockTimeoutError(timeoutSeconds);
    if (now - lastLog >= LOCK_WAIT_LOG_EVERY_MS) {
      lastLog = now;
      const holders = await conn<{ pid: number; application_name: string }[]>`
        SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND ((l.classid::bigint << 32) | l.objid::bigint) = ${MIGRATION_LOCK_KEY.toString()}::bigint`;
      const who = holders.map((h) => `pid ${h.pid}${h.application_name ? ` (${h.application_name})` : ""}`);
      log(
        `waiting for the migration lock held by ${who.length > 0 ? who.join(", ") : "another migrator"} (up to ${Math.ceil((deadline - now) / 1000)} s more)`,
      );
    }
    await Bun.sleep(LOCK_POLL_INTERVAL_MS);
  }
}

export async function releaseMigrationLock(conn: Conn): Promise<void> {
  await conn`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
}

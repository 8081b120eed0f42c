// NATS JetStream delivery target (SPEC §6). Each event is published to
// `paybridge.events.<type>` with `Nats-Msg-Id` = event id, and a row counts as delivered
// only once the stream's PubAck arrived. Redelivery after a crash is therefore deduplicated
// by the stream within its duplicate window; consumers deduplicate by id beyond it.
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { DeliveryTarget, Envelope } from "./envelope.ts";

export const DEFAULT_STREAM_NAME = "PAYBRIDGE";
export const DEFAULT_SUBJECT_PREFIX = "paybridge.events";
/**
 * How long the stream remembers message ids for deduplication. Hours, so a relay that
 * crashes between the PubAck and marking its rows published (and restarts, or is replaced,
 * within this window) never stores an event twice. Longer windows cost server memory.
 */
export const DUPLICATE_WINDOW_HOURS = 2;
export const NATS_CONNECT_TIMEOUT_MS = 3_000;
export const NATS_PUBLISH_TIMEOUT_MS = 5_000;
export const NATS_RECONNECT_WAIT_MS = 1_000;

export type NatsTargetOptions = {
  url: string;
  logger: Logger;
  /** Tests use their own stream and subjects; production keeps the defaults. */
  streamName?: string;
  subjectPrefix?: string;
  publishTimeoutMs?: number;
};

type Connected = { nc: NatsConnection; js: JetStreamClient };

export function natsSubject(prefix: string, envelope: Pick<Envelope, "type">): string {
  return `${prefix}.${envelope.type}`;
}

export function createNatsTarget(opts: NatsTargetOptions): DeliveryTarget {
  const streamName = opts.streamName ?? DEFAULT_STREAM_NAME;
  const prefix = opts.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  const publishTimeoutMs = opts.publishTimeoutMs ?? NATS_PUBLISH_TIMEOUT_MS;
  const log = opts.logger.child({ target: "nats" });
  // One connection attempt shared by every concurrent publish; reset when it fails or the
  // connection is closed for good, so the next publish (a breaker probe) tries again.
  let pending: Promise<Connected> | undefined;
  let closed = false;

  async function open(): Promise<Connected> {
    const nc = await connect({
      servers: opts.url,
      name: "paybridge-relay",
      timeout: NATS_CONNECT_TIMEOUT_MS,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: NATS_RECONNECT_WAIT_MS,
    });
    try {
      await ensureStream(nc, streamName, prefix, log);
    } catch (err) {
      await nc.close().catch(() => {});
      throw err;
    }
    void nc.closed().then(() => {
      pending = undefined;
    });
    log.info({ stream: streamName }, "connected to NATS JetStream");
    return { nc, js: jetstream(nc, { timeout: publishTimeoutMs }) };
  }

  function connection(): Promise<Connected> {
    if (closed) return Promise.reject(new Error("nats target closed"));
    if (pending === undefined) {
      pending = open();
      pending.catch(() => {
        pending = undefined;
      });
    }
    return pending;
  }

  return {
    name: "nats",
    async deliver(envelope, body) {
      const { js } = await connection();
      const ack = await js.publish(natsSubject(prefix, envelope), body, {
        msgID: envelope.id,
        timeout: publishTimeoutMs,
      });
      if (ack.duplicate) log.debug({ event_id: envelope.id }, "stream already had this event (deduplicated)");
    },
    async close() {
      closed = true;
      const p = pending;
      pending = undefined;
      if (p !== undefined) {
        const c = await p.catch(() => undefined);
        // drain() flushes in-flight publishes; bounded because a dead server never answers.
        if (c !== undefined)
          await Promise.race([c.nc.drain().catch(() => {}), Bun.sleep(NATS_CONNECT_TIMEOUT_MS)]);
        if (c !== undefined && !c.nc.isClosed()) await c.nc.close().catch(() => {});
      }
    },
  };
}

/** Creates the stream when missing; an existing stream is left as its operator configured it. */
async function ensureStream(nc: NatsConnection, name: string, prefix: string, log: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: NATS_CONNECT_TIMEOUT_MS });
  const wantWindowNs = nanos(DUPLICATE_WINDOW_HOURS * 3_600_000);
  try {
    const info = await jsm.streams.info(name);
    if ((info.config.duplicate_window ?? 0) < wantWindowNs) {
      log.warn(
        { stream: name, duplicate_window_ns: info.config.duplicate_window },
        "stream duplicate window is shorter than recommended; redelivered events may be stored twice",
      );
    }
    return;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  try {
    await jsm.streams.add({ name, subjects: [`${prefix}.>`], duplicate_window: wantWindowNs });
    log.info({ stream: name, subjects: `${prefix}.>` }, "created JetStream stream");
  } catch (err) {
    // Another relay created it at the same moment: fine.
    await jsm.streams.info(name).catch(() => {
      throw err;
    });
  }
}

function isStreamNotFound(err: unknown): boolean {
  const e = err as { name?: string; code?: number; api_error?: { err_code?: number } };
  return e?.name === "StreamNotFoundError" || e?.api_error?.err_code === 10059;
}

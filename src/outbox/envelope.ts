// The event envelope every consumer sees (SPEC §2.5), built from an outbox row. The same
// shape goes to NATS, to webhooks and to GET /api/v1/events.
import type { EventType } from "./events.ts";

export type Envelope = {
  id: string;
  type: EventType;
  version: number;
  occurred_at: string;
  aggregate_type: "user" | "wallet" | "transaction";
  aggregate_id: string;
  sequence: number;
  trace_id: string | null;
  actor: { id: string; role: string } | null;
  data: Record<string, unknown>;
};

/** The outbox columns an envelope is made of (select exactly these). */
export type EnvelopeRow = {
  id: string;
  type: string;
  version: number;
  occurred_at: Date;
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  trace_id: string | null;
  actor: unknown;
  data: unknown;
};

export function toEnvelope(row: EnvelopeRow): Envelope {
  return {
    id: row.id,
    type: row.type as EventType,
    version: row.version,
    occurred_at: row.occurred_at.toISOString(),
    aggregate_type: row.aggregate_type as Envelope["aggregate_type"],
    aggregate_id: row.aggregate_id,
    sequence: row.sequence,
    trace_id: row.trace_id,
    actor: (row.actor ?? null) as Envelope["actor"],
    data: (row.data ?? {}) as Record<string, unknown>,
  };
}

/** A place events are delivered to. `deliver` resolves only once the target has them. */
export type DeliveryTarget = {
  /** Metric label and breaker name: "nats" or "webhook". */
  readonly name: string;
  deliver(envelope: Envelope, body: string): Promise<void>;
  close(): Promise<void>;
};

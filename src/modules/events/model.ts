// Wire shapes of the admin event feed and requeue (SPEC §3.2, envelope of §2.5).
import { t } from "elysia";
import { Timestamp, Uuid } from "../../http/schemas.ts";
import { EVENT_TYPES } from "../../outbox/events.ts";
import { REQUEUE_MAX_IDS } from "../../outbox/store.ts";

export const FEED_LIMIT_DEFAULT = 100;
export const FEED_LIMIT_MAX = 1_000;

export const EventFeedQuery = t.Object({
  after: t.Optional(
    t.String({ description: "event id: return events after this one (omit to start from the oldest)" }),
  ),
  limit: t.Optional(
    t.Integer({ description: `page size, 1–${FEED_LIMIT_MAX}, default ${FEED_LIMIT_DEFAULT}` }),
  ),
});

export const EnvelopeSchema = t.Object(
  {
    id: Uuid,
    type: t.UnionEnum(EVENT_TYPES),
    version: t.Integer(),
    occurred_at: Timestamp,
    aggregate_type: t.Union([t.Literal("user"), t.Literal("wallet"), t.Literal("transaction")]),
    aggregate_id: Uuid,
    sequence: t.Integer({ minimum: 1 }),
    trace_id: t.Union([t.String(), t.Null()]),
    actor: t.Union([t.Object({ id: t.String(), role: t.String() }), t.Null()]),
    data: t.Record(t.String(), t.Unknown()),
  },
  { title: "EventEnvelope" },
);

export const EventFeedSchema = t.Object({
  data: t.Array(EnvelopeSchema),
  has_more: t.Boolean(),
});

export const RequeueBody = t.Object(
  {
    ids: t.Optional(
      t.Array(Uuid, {
        minItems: 1,
        maxItems: REQUEUE_MAX_IDS,
        description: "FAILED events to requeue; omit for all",
      }),
    ),
  },
  { additionalProperties: false },
);

export const RequeueResult = t.Object({
  requeued: t.Integer({ description: "how many FAILED events went back to PENDING" }),
  ids: t.Array(Uuid),
});

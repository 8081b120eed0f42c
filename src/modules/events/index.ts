// Admin event routes (SPEC §3.2): the outbox feed and requeue of parked (FAILED) events.
import { Elysia } from "elysia";
import type { AppDeps } from "../../app.ts";
import { guard } from "../../http/auth.ts";
import { bearer } from "../../http/schemas.ts";
import { EventFeedQuery, EventFeedSchema, RequeueBody, RequeueResult } from "./model.ts";
import { listEvents, requeueEvents } from "./service.ts";

const TAGS = ["events"];

export function eventsRoutes(deps: Pick<AppDeps, "sql" | "auth">) {
  const adminOnly = guard(deps.auth, ["admin"]);
  return new Elysia({ prefix: "/api/v1" })
    .get("/events", ({ query }) => listEvents(deps.sql, query), {
      transform: adminOnly,
      query: EventFeedQuery,
      response: { 200: EventFeedSchema },
      detail: bearer(
        "Outbox event feed, oldest first (admin). Pass the last event id seen as `after` to continue; a late-committing event is never skipped.",
        TAGS,
        [400, 401, 403],
      ),
    })
    .post("/admin/events/requeue", ({ body }) => requeueEvents(deps.sql, body?.ids), {
      transform: adminOnly,
      body: RequeueBody,
      response: { 200: RequeueResult },
      detail: bearer(
        "Put parked (FAILED) events back to pending; all of them when no ids are given (admin)",
        TAGS,
        [400, 401, 403, 413, 415],
      ),
    });
}

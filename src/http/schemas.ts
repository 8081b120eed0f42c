// Schemas shared by every feature's routes: the problem document, ids, and the standard
// error responses each route lists in the OpenAPI document.
import { t } from "elysia";
import "./formats.ts";

export const Uuid = t.String({ format: "uuid", description: "uuid" });
export const IdParams = t.Object({ id: Uuid });
export const Timestamp = t.String({ format: "date-time" });

export const ProblemSchema = t.Object(
  {
    type: t.String(),
    title: t.String(),
    status: t.Integer(),
    detail: t.String(),
    instance: t.String(),
    code: t.String({ description: "stable UPPER_SNAKE error code" }),
    request_id: t.String(),
    errors: t.Optional(t.Array(t.Object({ field: t.String(), message: t.String(), code: t.String() }))),
  },
  { title: "Problem", additionalProperties: true },
);

/**
 * Problem responses for a route's `response` map (documentation only: errors go through the
 * core error mapper, not response validation). Typed as adding nothing, so spreading it next
 * to `200: Schema` does not widen the map into an index signature.
 */
export function problems(...statuses: number[]): Record<never, never> {
  const out: Record<number, typeof ProblemSchema> = {};
  for (const s of statuses) out[s] = ProblemSchema;
  return out;
}

/**
 * Route `detail` for the OpenAPI document. `problemStatuses` are the problem+json responses
 * the route can produce; the document generator expands them (errors bypass response
 * validation, so they are documentation only).
 */
export const bearer = (summary: string, tags: string[], problemStatuses: number[] = []) => ({
  summary,
  tags,
  security: [{ bearerAuth: [] }],
  "x-problems": problemStatuses,
});
export const publicRoute = (summary: string, tags: string[], problemStatuses: number[] = []) => ({
  summary,
  tags,
  security: [],
  "x-problems": problemStatuses,
});

// Users and KYC routes (SPEC §3.2). Thin: guard → validate → service → render.
import { Elysia } from "elysia";
import type { AppDeps } from "../../app.ts";
import { authenticate, callerOf, guard } from "../../http/auth.ts";
import { pageSchema } from "../../http/pagination.ts";
import { idsOf, scopeFor } from "../../http/request-id.ts";
import { bearer, IdParams, publicRoute } from "../../http/schemas.ts";
import { KycDecisionBody, RegisterBody, UserListQuery, UserSchema } from "./model.ts";
import { getUser, listUsers, registerUser, transitionKyc } from "./service.ts";

const TAGS = ["users"];

export function usersRoutes(deps: AppDeps) {
  const anyRole = guard(deps.auth, ["user", "admin"]);
  const adminOnly = guard(deps.auth, ["admin"]);
  return new Elysia({ prefix: "/api/v1/users" })
    .post(
      "",
      async ({ body, request, set }) => {
        const ids = idsOf(request);
        // Public route; a caller who presents a token is recorded as the actor.
        const hasToken = request.headers.get("authorization") !== null;
        const actor = hasToken ? await authenticate(deps.auth, request) : undefined;
        const user = await registerUser(deps.sql, { traceId: ids.traceId, actor }, body);
        set.status = 201;
        return user;
      },
      {
        body: RegisterBody,
        response: { 201: UserSchema },
        detail: publicRoute("Register a user", TAGS, [400, 401, 409, 413, 415]),
      },
    )
    .get("", ({ query }) => listUsers(deps.sql, query), {
      transform: adminOnly,
      query: UserListQuery,
      response: { 200: pageSchema(UserSchema) },
      detail: bearer("List users (admin)", TAGS, [400, 401, 403]),
    })
    .get("/:id", ({ params, request }) => getUser(deps.sql, callerOf(request), params.id), {
      transform: anyRole,
      params: IdParams,
      response: { 200: UserSchema },
      detail: bearer("Get a user (owner or admin)", TAGS, [400, 401, 404]),
    })
    .post(
      "/:id/kyc/start",
      ({ params, request }) => {
        const caller = callerOf(request);
        return transitionKyc(deps.sql, scopeFor(idsOf(request), caller), caller, params.id, "start");
      },
      {
        transform: anyRole,
        params: IdParams,
        response: { 200: UserSchema },
        detail: bearer(
          "Start KYC: UNVERIFIED|REJECTED → PENDING (owner or admin)",
          TAGS,
          [400, 401, 404, 409],
        ),
      },
    )
    .post(
      "/:id/kyc",
      ({ params, body, request }) => {
        const caller = callerOf(request);
        const scope = scopeFor(idsOf(request), caller);
        return transitionKyc(
          deps.sql,
          scope,
          caller,
          params.id,
          body.approved ? "approve" : "reject",
          body.reason,
        );
      },
      {
        transform: adminOnly,
        params: IdParams,
        body: KycDecisionBody,
        response: { 200: UserSchema },
        detail: bearer(
          "Decide KYC: PENDING → VERIFIED or REJECTED (admin; reason required to reject)",
          TAGS,
          [400, 401, 403, 404, 409, 413, 415],
        ),
      },
    );
}

// Wallet routes (SPEC §3.2) except money movement, which lives in modules/transactions under
// the same /api/v1/wallets/:id/... paths.
import { Elysia } from "elysia";
import type { AppDeps } from "../../app.ts";
import { callerOf, guard } from "../../http/auth.ts";
import { pageSchema } from "../../http/pagination.ts";
import { idsOf, scopeFor } from "../../http/request-id.ts";
import { bearer, IdParams } from "../../http/schemas.ts";
import {
  CreateWalletBody,
  LimitsBody,
  MyWalletsQuery,
  type WalletAction,
  WalletListQuery,
  WalletSchema,
} from "./model.ts";
import {
  changeWalletStatus,
  createWallet,
  getWallet,
  listWallets,
  myWallets,
  updateLimits,
} from "./service.ts";

const TAGS = ["wallets"];

const STATUS_ROUTES: readonly { action: WalletAction; summary: string; admin: boolean }[] = [
  { action: "suspend", summary: "Suspend: ACTIVE → SUSPENDED (admin)", admin: true },
  { action: "activate", summary: "Activate: SUSPENDED|LOCKED → ACTIVE (admin)", admin: true },
  { action: "lock", summary: "Lock: ACTIVE|SUSPENDED → LOCKED (admin)", admin: true },
  {
    action: "close",
    summary: "Close at zero balance (admin; the owner for its own ACTIVE wallet)",
    admin: false,
  },
];

export function walletsRoutes(deps: AppDeps) {
  const anyRole = guard(deps.auth, ["user", "admin"]);
  const adminOnly = guard(deps.auth, ["admin"]);
  const scope = (request: Request) => scopeFor(idsOf(request), callerOf(request));

  let app = new Elysia({ prefix: "/api/v1/wallets" })
    .post(
      "",
      async ({ body, request, set }) => {
        const wallet = await createWallet(deps.sql, scope(request), callerOf(request), body);
        set.status = 201;
        return wallet;
      },
      {
        transform: anyRole,
        body: CreateWalletBody,
        response: { 201: WalletSchema },
        detail: bearer(
          "Open a wallet (VERIFIED users; user_id for admins)",
          TAGS,
          [400, 401, 403, 404, 409, 413, 415, 422],
        ),
      },
    )
    .get("", ({ query, request }) => listWallets(deps.sql, callerOf(request), query), {
      transform: anyRole,
      query: WalletListQuery,
      response: { 200: pageSchema(WalletSchema) },
      detail: bearer(
        "List wallets (own; admins: all, filters user_id, currency, status)",
        TAGS,
        [400, 401, 403],
      ),
    })
    .get("/me", ({ query, request }) => myWallets(deps.sql, callerOf(request), query), {
      transform: anyRole,
      query: MyWalletsQuery,
      response: { 200: pageSchema(WalletSchema) },
      detail: bearer("The caller's own wallets", TAGS, [400, 401]),
    })
    .get("/:id", ({ params, request }) => getWallet(deps.sql, callerOf(request), params.id), {
      transform: anyRole,
      params: IdParams,
      response: { 200: WalletSchema },
      detail: bearer("Get a wallet (owner or admin)", TAGS, [400, 401, 404]),
    })
    .patch(
      "/:id/limits",
      ({ params, body, request }) =>
        updateLimits(deps.sql, scope(request), callerOf(request), params.id, body),
      {
        transform: adminOnly,
        params: IdParams,
        body: LimitsBody,
        response: { 200: WalletSchema },
        detail: bearer(
          "Set outgoing limits (admin); null removes a limit",
          TAGS,
          [400, 401, 403, 404, 413, 415, 422],
        ),
      },
    );
  for (const r of STATUS_ROUTES) {
    app = app.post(
      `/:id/${r.action}`,
      ({ params, request }) =>
        changeWalletStatus(deps.sql, scope(request), callerOf(request), params.id, r.action),
      {
        transform: r.admin ? adminOnly : anyRole,
        params: IdParams,
        response: { 200: WalletSchema },
        detail: bearer(r.summary, TAGS, [400, 401, 403, 404, 409, ...(r.action === "close" ? [422] : [])]),
      },
    );
  }
  return app;
}

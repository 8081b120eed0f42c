// GET /api/v1/currencies: the registry of SPEC §2.1 (public).
import { Elysia, t } from "elysia";
import { publicRoute } from "../../http/schemas.ts";
import { CURRENCIES } from "../../ledger/money.ts";

export const CurrencySchema = t.Object(
  {
    code: t.String({ pattern: "^[A-Z]{3,5}$" }),
    kind: t.Union([t.Literal("fiat"), t.Literal("crypto")]),
    exponent: t.Integer({ minimum: 0, description: "digits after the decimal point" }),
  },
  { title: "Currency" },
);

const BODY = { data: CURRENCIES.map((c) => ({ code: c.code, kind: c.kind, exponent: c.exponent })) };

export function currenciesRoutes() {
  return new Elysia({ prefix: "/api/v1" }).get("/currencies", () => BODY, {
    response: { 200: t.Object({ data: t.Array(CurrencySchema) }) },
    detail: publicRoute("List supported currencies", ["currencies"]),
  });
}

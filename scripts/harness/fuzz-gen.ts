// Request generators for the fuzzer, derived from the served OpenAPI document: for each
// operation, path parameters (real ids, random uuids, garbage), query parameters, bodies that
// follow the schema, break it (wrong types, missing/extra fields, boundary values) or are not
// JSON at all (huge, deeply nested, malformed, odd encodings), and odd headers.
import fc from "fast-check";
import {
  AMOUNT_EDGES,
  contentTypeArb,
  idemKeyArb,
  rawBodyArb,
  STRING_EDGES,
  tokenArb,
} from "./fuzz-edges.ts";

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  format?: string;
  pattern?: string;
  description?: string;
  $ref?: string;
};
type Param = { name: string; in: "path" | "query" | "header"; required?: boolean; schema?: JsonSchema };
export type Operation = {
  method: string;
  template: string;
  params: Param[];
  body?: JsonSchema;
  bodyRequired: boolean;
  secured: boolean;
  /** documented media types per response status ("200" → ["application/json"]) */
  responseTypes: Record<string, string[]>;
};

export type Pools = {
  /** ids owned by the "owner" user (whose token is tokens.owner); the "other" user must never reach them */
  ownerIds: string[];
  userIds: string[];
  walletIds: string[];
  txIds: string[];
  keys: string[];
  tokens: { admin: string; owner: string; other: string; expired: string };
};

export type FuzzRequest = {
  op: Operation;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** what was done to it, for the failure report */
  shape: string;
  /** whose token it carries: "admin", "owner", "other user", "no token", ... */
  who: string;
};

export function operationsOf(doc: { paths: Record<string, Record<string, unknown>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const o = raw as {
        parameters?: Param[];
        requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
        security?: unknown[];
        responses?: Record<string, { content?: Record<string, unknown> }>;
      };
      ops.push({
        method: method.toUpperCase(),
        template,
        params: o.parameters ?? [],
        body: o.requestBody?.content?.["application/json"]?.schema,
        bodyRequired: o.requestBody?.required === true,
        secured: (o.security?.length ?? 0) > 0,
        responseTypes: Object.fromEntries(
          Object.entries(o.responses ?? {}).map(([status, r]) => [status, Object.keys(r.content ?? {})]),
        ),
      });
    }
  }
  return ops;
}

const anyJson = fc.jsonValue({ maxDepth: 3 });

function isAmount(name: string, s: JsonSchema): boolean {
  return /amount|limit/.test(name) || (s.description ?? "").toString().includes("decimal string");
}

/** A value for one schema: usually valid, sometimes a boundary or a wrong type. */
export function valueArb(s: JsonSchema | undefined, name: string, pools: Pools): fc.Arbitrary<unknown> {
  if (s === undefined) return anyJson;
  if (s.anyOf !== undefined) return fc.oneof(...s.anyOf.map((x) => valueArb(x, name, pools)));
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum !== undefined)
    return fc.oneof(fc.constantFrom(...s.enum), fc.constantFrom("", "lowercase", 0, null));
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "string": {
      if (s.format === "uuid") {
        const real = [...pools.walletIds, ...pools.userIds, ...pools.txIds];
        return fc.oneof(
          fc.constantFrom(...(real.length > 0 ? real : ["x"])),
          fc.uuid(),
          fc.constantFrom("not-a-uuid", "", "00000000-0000-0000-0000-000000000000"),
        );
      }
      if (s.format === "date-time")
        return fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.constantFrom("yesterday", "2026-13-45T99:99:99Z", ""),
        );
      if (isAmount(name, s))
        return fc.oneof(
          fc.constantFrom(...AMOUNT_EDGES),
          fc.integer({ min: 1, max: 10_000 }).map((n) => (n / 100).toFixed(2)),
        );
      if (/currency/.test(name))
        return fc.constantFrom("USD", "EUR", "JPY", "BTC", "usd", "XXX", "US", "USDTT", "");
      if (/email/.test(name))
        return fc.oneof(fc.emailAddress(), fc.constantFrom("no-at", "@x", " A@B.C ", "a@b.c".repeat(80)));
      return fc.oneof(
        fc.string({ maxLength: Math.min(s.maxLength ?? 64, 300), unit: "grapheme" }),
        fc.constantFrom(...STRING_EDGES),
        fc.string({ unit: "binary", maxLength: 40 }),
      );
    }
    case "integer":
    case "number": {
      const lo = s.minimum ?? -1_000_000;
      const hi = s.maximum ?? 1_000_000;
      return fc.oneof(
        fc.integer({ min: Math.ceil(lo), max: Math.floor(hi) }),
        fc.constantFrom(lo - 1, lo, hi, hi + 1, 1.5, -0, 2 ** 53, -(2 ** 63), 1e308, "60"),
      );
    }
    case "boolean":
      return fc.oneof(fc.boolean(), fc.constantFrom("true", 1, null));
    case "null":
      return fc.constant(null);
    case "array":
      return fc.array(valueArb(s.items, name, pools), { maxLength: 5 });
    case "object":
      return objectArb(s, pools);
    default:
      return anyJson;
  }
}

function objectArb(s: JsonSchema, pools: Pools): fc.Arbitrary<unknown> {
  const props = Object.entries(s.properties ?? {});
  const required = new Set(s.required ?? []);
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, v] of props) record[k] = valueArb(v, k, pools);
  const requiredKeys = props.map(([k]) => k).filter((k) => required.has(k));
  const valid = fc.record(record, { requiredKeys });
  return fc.oneof(
    { weight: 12, arbitrary: valid },
    // one field of a wrong type
    {
      weight: 2,
      arbitrary: fc
        .tuple(valid, fc.constantFrom(...(props.length > 0 ? props.map(([k]) => k) : ["x"])), anyJson)
        .map(([o, k, v]) => ({ ...(o as object), [k]: v })),
    },
    // an unknown field
    { weight: 1, arbitrary: valid.map((o) => ({ ...(o as object), unexpected_field: 1 })) },
    // a required field missing
    {
      weight: 1,
      arbitrary: valid.map((o) => {
        const c = { ...(o as Record<string, unknown>) };
        delete c[requiredKeys[0] ?? "x"];
        return c;
      }),
    },
    // not an object at all
    { weight: 1, arbitrary: fc.oneof(anyJson, fc.constant([]), fc.constant(null)) },
  );
}

function pathValueArb(template: string, name: string, p: Pools): fc.Arbitrary<string> {
  const real =
    name === "key"
      ? p.keys
      : template.startsWith("/api/v1/users")
        ? p.userIds
        : template.startsWith("/api/v1/transactions")
          ? p.txIds
          : p.walletIds;
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...(real.length > 0 ? real : ["none"])) },
    { weight: 2, arbitrary: fc.uuid() },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...(real.length > 0 ? real : ["none"])).map((s) => s.toUpperCase()),
    },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.string({ maxLength: 40, unit: "grapheme" }),
        fc.constantFrom("..", "%2e%2e", "me", "0", "-1", "a".repeat(300), "%00", "%zz"),
      ),
    },
  );
}

export function requestArb(op: Operation, pools: Pools): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.params.filter((x) => x.in === "path");
  const queryParams = op.params.filter((x) => x.in === "query");
  const pathArb = fc
    .tuple(...pathParams.map((x) => pathValueArb(op.template, x.name, pools)))
    .map((values) => {
      let path = op.template;
      pathParams.forEach((x, i) => {
        const v = values[i]!;
        // Mostly encoded; sometimes sent raw (odd escapes, dots) to reach the router as-is.
        path = path.replace(`{${x.name}}`, /^[%.]/.test(v) ? v : encodeURIComponent(v));
      });
      return path;
    });
  const queryArb = fc
    .tuple(
      ...queryParams.map((x) => fc.option(valueArb(x.schema, x.name, pools), { nil: undefined, freq: 2 })),
      fc.boolean(),
    )
    .map((vals) => {
      const extra = vals.pop();
      const q = new URLSearchParams();
      queryParams.forEach((x, i) => {
        const v = vals[i];
        if (v !== undefined) q.set(x.name, typeof v === "string" ? v : JSON.stringify(v));
      });
      if (extra === true) q.set("unknown_param", "1");
      const s = q.toString();
      return s.length > 0 ? `?${s}` : "";
    });
  const bodyArb: fc.Arbitrary<{ body?: string | Uint8Array; shape: string }> =
    op.method === "GET"
      ? fc.constant({ shape: "no body" })
      : fc.oneof(
          {
            weight: 8,
            arbitrary: (op.body === undefined ? anyJson : valueArb(op.body, "body", pools)).map((v) => ({
              body: JSON.stringify(v) ?? "null",
              shape: "schema-based JSON",
            })),
          },
          { weight: 2, arbitrary: rawBodyArb },
          { weight: 1, arbitrary: fc.constant({ shape: "no body" }) },
        );
  return fc
    .record({
      path: pathArb,
      query: queryArb,
      body: bodyArb,
      ct: contentTypeArb,
      token: tokenArb(pools),
      idem: idemKeyArb,
      requestId: fc.oneof(
        { weight: 5, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom("ok-id.1:2", "", "x".repeat(200), "bad id!") },
      ),
      encoding: fc.oneof(
        { weight: 9, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom("gzip", "br", "identity", "x-unknown") },
      ),
      methodOverride: fc.oneof(
        { weight: 30, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom("PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE") },
      ),
    })
    .map((r) => {
      const headers: Record<string, string> = {};
      if (r.token.auth !== undefined) headers.authorization = r.token.auth;
      if (r.body.body !== undefined && r.ct !== "") headers["content-type"] = r.ct;
      if (r.idem.key !== undefined) headers["idempotency-key"] = r.idem.key;
      if (r.requestId !== undefined) headers["x-request-id"] = r.requestId;
      if (r.encoding !== undefined) headers["content-encoding"] = r.encoding;
      const method = r.methodOverride ?? op.method;
      return {
        op,
        method,
        path: `${r.path}${r.query}`,
        headers,
        body: ["GET", "HEAD", "TRACE", "OPTIONS"].includes(method) ? undefined : r.body.body,
        who: r.token.who,
        shape: `${r.body.shape}; ${r.token.who}; ct=${r.ct.slice(0, 40)}${r.encoding ? `; content-encoding ${r.encoding}` : ""}${r.methodOverride ? `; method ${method}` : ""}`,
      };
    });
}

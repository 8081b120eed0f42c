// The odd inputs the fuzzer mixes in: boundary amounts and strings, bodies no schema
// describes (huge, deeply nested, malformed, not UTF-8), content types, tokens and
// idempotency keys that a careless or hostile client might send.
import fc from "fast-check";
import type { Pools } from "./fuzz-gen.ts";

/** Bodies just over the 64 KiB limit (413) and just under it. */
const BODY_LIMIT_BYTES = 64 * 1024;
const DEEP_NESTING = 5_000;

export const AMOUNT_EDGES = [
  "0",
  "0.00",
  "-1",
  "-0.01",
  "1",
  "0.01",
  "0.001",
  "100.50",
  "1e3",
  "1E-2",
  " 1",
  "1 ",
  "1.",
  ".5",
  "+1",
  "0x10",
  "١٢٣",
  "１",
  "9223372036854775807",
  "9223372036854775808",
  "92233720368547758.07",
  "92233720368547758.08",
  "99999999999999999999999999",
  "NaN",
  "Infinity",
  "",
  "1,5",
  "1_000",
  "00001",
  "0.000000001",
  "1.0000000000",
];
export const STRING_EDGES = [
  "",
  " ",
  "\u0000",
  "\u202e",
  "💸",
  "a".repeat(255),
  "a".repeat(256),
  "a".repeat(1001),
  "<script>",
  "'; DROP TABLE users; --",
  "%00",
  "\\",
  "null",
];

/** Raw bodies no schema describes. */
export const rawBodyArb: fc.Arbitrary<{ body: string | Uint8Array; shape: string }> = fc.oneof(
  fc.constant({ body: `{"a":"${"x".repeat(BODY_LIMIT_BYTES + 10)}"}`, shape: "huge body (>64 KiB)" }),
  fc.constant({
    body: `{"description":"${"x".repeat(BODY_LIMIT_BYTES - 200)}"}`,
    shape: "body just under 64 KiB",
  }),
  fc.constant({
    body: `${"[".repeat(DEEP_NESTING)}${"]".repeat(DEEP_NESTING)}`,
    shape: "deeply nested arrays",
  }),
  fc.constant({
    body: `{"metadata":${'{"a":'.repeat(DEEP_NESTING)}1${"}".repeat(DEEP_NESTING)}}`,
    shape: "deeply nested object",
  }),
  fc
    .constantFrom(
      '{"amount":"1",',
      "{'amount':'1'}",
      '{"amount":"1",}',
      "\ufeff{}",
      "",
      "   ",
      "null",
      "[]",
      '"str"',
      "1e999",
      "{}{}",
      '{"__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"x":1}}}',
    )
    .map((b) => ({ body: b, shape: "malformed or odd JSON" })),
  fc.constant({
    body: new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    shape: "invalid UTF-8",
  }),
  fc.constant({ body: new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]), shape: "gzip magic, garbage" }),
);

export const contentTypeArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "application/json; charset=latin1",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data",
      "application/problem+json",
      "application/json, text/plain",
      "",
      "a".repeat(2000),
    ),
  },
);

export function tokenArb(p: Pools): fc.Arbitrary<{ auth?: string; who: string }> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant({ auth: `Bearer ${p.tokens.admin}`, who: "admin" }) },
    { weight: 3, arbitrary: fc.constant({ auth: `Bearer ${p.tokens.owner}`, who: "owner" }) },
    { weight: 1, arbitrary: fc.constant({ auth: `Bearer ${p.tokens.other}`, who: "other user" }) },
    { weight: 1, arbitrary: fc.constant({ auth: undefined, who: "no token" }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        { auth: `Bearer ${p.tokens.expired}`, who: "expired" },
        {
          auth: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.",
          who: "alg none",
        },
        { auth: "Bearer not.a.jwt", who: "garbage" },
        { auth: "Basic YWRtaW46YWRtaW4=", who: "basic" },
        { auth: "Bearer", who: "empty bearer" },
        { auth: `Bearer ${"a".repeat(9000)}`, who: "huge token" },
      ),
    },
  );
}

export const idemKeyArb = fc.oneof(
  { weight: 6, arbitrary: fc.uuid().map((u) => ({ key: `fuzz-${u}` as string | undefined })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom<string | undefined>(undefined, "", " ", "k".repeat(255), "k".repeat(256), "ключ", "a b")
      .map((key) => ({ key })),
  },
);

// The short fuzz run of `make test` (issue 9): 1,000 requests generated from /openapi.json
// against the compiled binary. No 5xx, every 4xx is problem+json, serve stays up, and batches
// of rejected requests leave the database unchanged. The full run is `make fuzz`.
import { describe, expect, test } from "bun:test";
import type { FuzzRequest, Operation } from "../../scripts/harness/fuzz-gen.ts";
import { checkResponse, runFuzz } from "../../scripts/harness/fuzz-run.ts";

const SEED = 9;
const REQUESTS = 1_000;
const TEST_TIMEOUT_MS = 180_000;

test(
  "1,000 fuzzed requests: no 5xx, problem+json errors, server up, rejected requests change nothing",
  async () => {
    const lines: string[] = [];
    const r = await runFuzz({ seed: SEED, requests: REQUESTS, batch: 10, print: (l) => lines.push(l) });
    if (!r.ok) console.log(lines.join("\n"));
    expect(r.sent).toBe(REQUESTS);
    // the generator reaches every API route
    expect(r.perRoute.size).toBeGreaterThanOrEqual(25);
    expect(r.batchesCompared).toBeGreaterThan(0);
    expect(r.failures).toEqual([]);
  },
  TEST_TIMEOUT_MS,
);

describe("the fuzzer's response properties can fail", () => {
  const op: Operation = {
    method: "GET",
    template: "/api/v1/wallets/{id}/transactions",
    params: [{ name: "limit", in: "query" }],
    bodyRequired: false,
    secured: true,
    responseTypes: { "200": ["application/json"] },
  };
  const OWNED = "11111111-1111-4111-8111-111111111111";
  const req = (path: string, who = "admin"): FuzzRequest => ({
    op,
    method: "GET",
    path,
    headers: {},
    shape: "",
    who,
  });
  const headers = (contentType: string, extra: Record<string, string> = {}) =>
    new Headers({ "content-type": contentType, "x-request-id": "r1", ...extra });
  const problem = (status: number) => JSON.stringify({ status, code: "VALIDATION_ERROR", title: "x" });
  const check = (r: FuzzRequest, status: number, h: Headers, text: string) =>
    checkResponse(r, status, h, text, [OWNED]);

  test("well-formed answers pass", () => {
    expect(
      check(req(`/api/v1/wallets/${OWNED}/transactions?limit=5`), 200, headers("application/json"), "{}"),
    ).toBeUndefined();
    expect(check(req("/x?limit=0"), 400, headers("application/problem+json"), problem(400))).toBeUndefined();
  });

  test("each broken property is reported", () => {
    expect(check(req("/x"), 500, headers("application/problem+json"), problem(500))).toContain("HTTP 500");
    expect(check(req("/x"), 400, headers("text/plain"), "bad")).toContain("content-type");
    expect(check(req("/x"), 404, headers("application/problem+json"), problem(400))).toContain(
      "problem.status",
    );
    expect(
      check(req("/x"), 400, new Headers({ "content-type": "application/problem+json" }), problem(400)),
    ).toContain("X-Request-ID");
    expect(check(req("/x"), 405, headers("application/problem+json"), problem(405))).toContain("Allow");
    expect(check(req("/x?limit=101"), 200, headers("application/json"), "{}")).toContain("limit=101");
    expect(check(req("/x"), 200, headers("text/html"), "<p>")).toContain("documented");
    expect(
      check(
        req(`/api/v1/wallets/${OWNED.toUpperCase()}/transactions`, "other user"),
        200,
        headers("application/json"),
        "{}",
      ),
    ).toContain("another user");
    const leak = JSON.stringify({ status: 400, code: "X", detail: "at foo (/src/a.ts:1:2)" });
    expect(check(req("/x"), 400, headers("application/problem+json"), leak)).toContain("leaked");
  });
});

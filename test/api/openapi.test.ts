// /openapi.json is an OpenAPI 3.1 document covering every route with its auth and problem
// responses; /docs works offline (no external URLs).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Harness, startHarness } from "./helpers.ts";

let h: Harness;
let doc: any;
beforeAll(async () => {
  h = await startHarness();
  doc = (await h.call("GET", "/openapi.json")).body;
});
afterAll(async () => {
  await h?.close();
});

const ROUTES: [string, string, "public" | "bearer"][] = [
  ["get", "/api/v1/currencies", "public"],
  ["post", "/api/v1/users", "public"],
  ["get", "/api/v1/users", "bearer"],
  ["get", "/api/v1/users/{id}", "bearer"],
  ["post", "/api/v1/users/{id}/kyc/start", "bearer"],
  ["post", "/api/v1/users/{id}/kyc", "bearer"],
  ["post", "/api/v1/wallets", "bearer"],
  ["get", "/api/v1/wallets", "bearer"],
  ["get", "/api/v1/wallets/me", "bearer"],
  ["get", "/api/v1/wallets/{id}", "bearer"],
  ["post", "/api/v1/wallets/{id}/suspend", "bearer"],
  ["post", "/api/v1/wallets/{id}/activate", "bearer"],
  ["post", "/api/v1/wallets/{id}/lock", "bearer"],
  ["post", "/api/v1/wallets/{id}/close", "bearer"],
  ["patch", "/api/v1/wallets/{id}/limits", "bearer"],
];

describe("OpenAPI document", () => {
  test("is OpenAPI 3.1 with info, paths and a bearer scheme", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBeString();
    expect(doc.info.version).toBeString();
    expect(doc.components.securitySchemes.bearerAuth).toEqual({
      type: "http",
      scheme: "bearer",
      bearerFormat: "JWT",
    });
    expect(doc.components.schemas.Problem).toBeDefined();
  });

  test.each(ROUTES)("%s %s is documented with security and responses", (method, path, auth) => {
    const op = doc.paths[path]?.[method];
    expect(op).toBeDefined();
    expect(op.operationId).toBeString();
    if (auth === "bearer") {
      expect(op.security).toEqual([{ bearerAuth: [] }]);
      expect(op.responses["401"].content["application/problem+json"]).toBeDefined();
    } else {
      expect(op.security).toEqual([]);
    }
    const success = Object.keys(op.responses).filter((s) => s.startsWith("2"));
    expect(success.length).toBe(1);
    expect(op.responses[success[0] as string].content["application/json"].schema).toBeDefined();
    expect(op.responses["500"]).toBeDefined();
    if (path.includes("{id}"))
      expect(
        op.parameters.some((p: { name: string; in: string }) => p.name === "id" && p.in === "path"),
      ).toBe(true);
    if (["post", "patch"].includes(method) && !/(start|suspend|activate|lock|close)$/.test(path)) {
      expect(op.requestBody.content["application/json"].schema).toBeDefined();
    }
  });

  test("every documented operation has responses and security, and every $ref resolves", () => {
    const text = JSON.stringify(doc);
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        expect(op.responses, `${method} ${path}`).toBeDefined();
        expect(Array.isArray(op.security), `${method} ${path}`).toBe(true);
      }
    }
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      expect(doc.components.schemas[m[1] as string]).toBeDefined();
    }
    expect(doc.paths["/docs"]).toBeUndefined();
  });
});

describe("/docs", () => {
  test("an offline Swagger UI page: no external URLs, assets served locally", async () => {
    const page = await h.call("GET", "/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.text).not.toMatch(/https?:\/\//);
    for (const asset of ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/init.js"]) {
      expect(page.text).toContain(asset);
      const r = await h.call("GET", asset);
      expect(r.status).toBe(200);
      expect(r.text.length).toBeGreaterThan(20);
    }
    expect((await h.call("GET", "/docs/init.js")).text).toContain("/openapi.json");
  });
});

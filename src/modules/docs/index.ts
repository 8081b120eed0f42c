// GET /openapi.json (OpenAPI 3.1, generated from the route schemas) and GET /docs, a Swagger
// UI page whose assets are compiled into the binary (imported as text): it works offline,
// with no CDN, and its script is a separate file so a strict CSP (no inline script) holds.
import { toOpenAPISchema } from "@elysiajs/openapi";
import type { AnyElysia } from "elysia";
import { Elysia } from "elysia";
import uiCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import uiBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import pkg from "../../../package.json" with { type: "json" };
import { ProblemSchema } from "../../http/schemas.ts";

export const OPENAPI_VERSION = "3.1.0";
const DOCS_CACHE_SECONDS = 3600;

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>PayBridge API reference</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;
const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });\n`;

type Operation = {
  security?: unknown;
  responses?: Record<string, unknown>;
  "x-problems"?: number[];
  [k: string]: unknown;
};

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid input (VALIDATION_ERROR, MALFORMED_JSON)",
  401: "Missing or invalid bearer token",
  403: "The caller's role may not do this",
  404: "No such resource (or not the caller's)",
  405: "Method not allowed",
  409: "Conflict with the current state",
  413: "Body over 64 KiB",
  415: "Body is not application/json",
  422: "Business rule refused",
  429: "Rate limited",
  500: "Unexpected error",
  503: "Database unavailable, timeout or draining",
};

function problemResponse(status: number) {
  return {
    description: PROBLEM_DESCRIPTIONS[status] ?? "Problem",
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  };
}

/** Builds the document from the app's routes; documentation routes themselves are left out. */
export function buildOpenApiDocument(app: AnyElysia): Record<string, unknown> {
  const { paths, components } = toOpenAPISchema(
    app,
    { paths: [/^\/docs/, "/openapi.json"] },
    undefined,
    undefined,
    OPENAPI_VERSION,
  );
  // Our global JSON body parser is a function, so the generator cannot tell the request
  // content type: fill application/json in from each route's body schema (TypeBox schemas
  // are JSON Schema; the round trip drops TypeBox's symbol keys).
  for (const route of app.routes) {
    const body = (route.hooks as { body?: unknown } | undefined)?.body;
    const op = (paths as Record<string, Record<string, Operation>>)[
      route.path.replace(/:([^/]+)/g, "{$1}")
    ]?.[route.method.toLowerCase()];
    if (body === undefined || op === undefined) continue;
    op.requestBody = {
      required: true,
      content: { "application/json": { schema: JSON.parse(JSON.stringify(body)) } },
    };
  }
  for (const item of Object.values(paths ?? {})) {
    for (const op of Object.values(item ?? {}) as Operation[]) {
      if (typeof op !== "object" || op === null) continue;
      op.security ??= [];
      op.responses ??= {};
      for (const status of [...(op["x-problems"] ?? []), 500, 503]) {
        op.responses[String(status)] ??= problemResponse(status);
      }
      delete op["x-problems"];
    }
  }
  return {
    openapi: OPENAPI_VERSION,
    info: {
      title: "PayBridge API",
      version: pkg.version,
      description:
        "Wallets and payments. Amounts are decimal strings in major units; errors are application/problem+json (RFC 9457).",
    },
    servers: [{ url: "/" }],
    tags: [{ name: "currencies" }, { name: "users" }, { name: "wallets" }],
    paths,
    components: {
      ...components,
      schemas: { ...components.schemas, Problem: ProblemSchema },
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
    },
  };
}

export function docsRoutes(getApp: () => AnyElysia | undefined) {
  let cached: string | undefined;
  let cachedRoutes = -1;
  const asset = (body: string, type: string) => () =>
    new Response(body, {
      headers: { "content-type": type, "cache-control": `public, max-age=${DOCS_CACHE_SECONDS}` },
    });
  return new Elysia()
    .get(
      "/openapi.json",
      () => {
        const app = getApp();
        if (app === undefined) throw new Error("openapi: app not built yet");
        if (cached === undefined || cachedRoutes !== app.routes.length) {
          cached = JSON.stringify(buildOpenApiDocument(app));
          cachedRoutes = app.routes.length;
        }
        return new Response(cached, { headers: { "content-type": "application/json" } });
      },
      { detail: { hide: true } },
    )
    .get("/docs", asset(PAGE, "text/html; charset=utf-8"), { detail: { hide: true } })
    .get("/docs/swagger-ui.css", asset(uiCss, "text/css; charset=utf-8"), { detail: { hide: true } })
    .get("/docs/swagger-ui-bundle.js", asset(uiBundle, "text/javascript; charset=utf-8"), {
      detail: { hide: true },
    })
    .get("/docs/init.js", asset(INIT, "text/javascript; charset=utf-8"), { detail: { hide: true } });
}

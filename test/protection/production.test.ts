// SPEC §1.1 production refusals: without an explicit DATABASE_URL, without a JWT key, with a
// wildcard CORS origin, or with a non-loopback database whose sslmode is absent or disable.
// Config-level table first, then the binary: `serve` exits 1 listing every problem at once.
import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { TEST_JWT_SECRET } from "./helpers.ts";
import { runBinary } from "./serve-process.ts";

const PROD_OK = {
  PAYBRIDGE_ENV: "production",
  DATABASE_URL: "postgres://app@db.internal:5432/paybridge?sslmode=verify-full",
  JWT_SECRET: TEST_JWT_SECRET,
  CORS_ORIGINS: "https://app.example.com",
};

function problems(env: Record<string, string | undefined>, purpose: "serve" | "migrate" = "serve"): string[] {
  try {
    loadConfig(env, purpose);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

describe("production refusals (config)", () => {
  test("a complete production configuration is accepted", () => {
    expect(problems(PROD_OK)).toEqual([]);
  });

  test.each([
    ["no DATABASE_URL", { DATABASE_URL: undefined }, "DATABASE_URL: required in production"],
    ["no JWT key", { JWT_SECRET: undefined }, "JWT_SECRET or JWT_PUBLIC_KEY: required in production"],
    ["wildcard CORS", { CORS_ORIGINS: "*" }, "CORS_ORIGINS: a wildcard origin is refused in production"],
    ["wildcard among origins", { CORS_ORIGINS: "https://a.example,*" }, "CORS_ORIGINS: a wildcard origin"],
    [
      "remote DB, no sslmode",
      { DATABASE_URL: "postgres://app@db.internal/paybridge" },
      "DATABASE_URL: sslmode=",
    ],
    [
      "remote DB, sslmode=disable",
      { DATABASE_URL: "postgres://app@10.0.0.5/p?sslmode=disable" },
      "DATABASE_URL: sslmode=",
    ],
    ["remote DB, sslmode=prefer", { DATABASE_URL: "postgres://app@10.0.0.5/p?sslmode=prefer" }, null],
  ] as const)("%s", (_name, patch, message) => {
    const got = problems({ ...PROD_OK, ...patch });
    if (message === null) expect(got).toEqual([]);
    else expect(got.some((p) => p.startsWith(message))).toBe(true);
  });

  test.each([
    ["loopback DB without sslmode", { DATABASE_URL: "postgres://postgres@127.0.0.1:5432/p" }],
    ["localhost DB without sslmode", { DATABASE_URL: "postgres://postgres@localhost/p" }],
    ["remote DB with sslmode=require", { DATABASE_URL: "postgres://app@db.internal/p?sslmode=require" }],
    ["no CORS_ORIGINS (no cross-origin access at all)", { CORS_ORIGINS: undefined }],
  ] as const)("accepted: %s", (_name, patch) => {
    expect(problems({ ...PROD_OK, ...patch })).toEqual([]);
  });

  test("production CORS default is no origin at all, never *", () => {
    expect(loadConfig({ ...PROD_OK, CORS_ORIGINS: undefined }, "serve").corsOrigins).toEqual([]);
    expect(loadConfig({ JWT_SECRET: TEST_JWT_SECRET }, "serve").corsOrigins).toEqual(["*"]);
  });

  test("every problem is reported at once", () => {
    const got = problems({ PAYBRIDGE_ENV: "production", CORS_ORIGINS: "*" });
    expect(got).toHaveLength(3);
  });

  test("migrate needs no JWT key, even in production", () => {
    expect(problems({ ...PROD_OK, JWT_SECRET: undefined }, "migrate")).toEqual([]);
  });

  test("protection settings are validated too", () => {
    const got = problems({
      RATE_LIMIT_API_PER_MIN: "0",
      RATE_LIMIT_BURST: "-1",
      RATE_LIMIT_ENABLED: "maybe",
      REDIS_URL: "http://redis:6379",
      TRUSTED_PROXIES: "10.0.0.0/8,not-a-cidr",
      CORS_ORIGINS: "https://app.example.com/path",
      JWT_SECRET: TEST_JWT_SECRET,
    });
    for (const name of [
      "RATE_LIMIT_API_PER_MIN",
      "RATE_LIMIT_BURST",
      "RATE_LIMIT_ENABLED",
      "REDIS_URL",
      "TRUSTED_PROXIES",
      "CORS_ORIGINS",
    ]) {
      expect(got.some((p) => p.startsWith(`${name}:`))).toBe(true);
    }
    // A Redis URL may carry a password: it is never echoed.
    expect(
      problems({ REDIS_URL: "http://:s3cret@redis:6379", JWT_SECRET: TEST_JWT_SECRET }).join("\n"),
    ).not.toContain("s3cret");
  });
});

describe("production refusals (the binary)", () => {
  test("serve exits 1 listing every refused setting, one per line, and never listens", async () => {
    const r = await runBinary(["serve"], {
      PAYBRIDGE_ENV: "production",
      CORS_ORIGINS: "*",
      PORT: "0",
      HOST: "127.0.0.1",
    });
    expect(r.exitCode).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toContain("config: DATABASE_URL: required in production");
    expect(lines).toContain("config: JWT_SECRET or JWT_PUBLIC_KEY: required in production");
    expect(lines).toContain("config: CORS_ORIGINS: a wildcard origin is refused in production");
    expect(r.stdout).not.toContain("listening");
  }, 300_000);

  test("serve refuses a remote database without TLS in production", async () => {
    const r = await runBinary(["serve"], {
      ...PROD_OK,
      DATABASE_URL: "postgres://app:hunter2@db.internal:5432/paybridge?sslmode=disable",
      PORT: "0",
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("config: DATABASE_URL: sslmode=require or verify-full is required");
    expect(r.stderr).not.toContain("hunter2");
  }, 60_000);
});

// Configuration (SPEC §1.1): defaults, every problem reported at once, production refusals,
// and what each subcommand needs.
import { describe, expect, test } from "bun:test";
import { ConfigError, DEFAULT_DATABASE_URL, loadConfig, redactUrl } from "../src/config.ts";

const SECRET = "x".repeat(32);

function problems(
  env: Record<string, string | undefined>,
  purpose: Parameters<typeof loadConfig>[1] = "serve",
): string[] {
  try {
    loadConfig(env, purpose);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

const PROD_OK = {
  PAYBRIDGE_ENV: "production",
  DATABASE_URL: "postgres://app:pw@db.internal:5432/paybridge?sslmode=require",
  JWT_SECRET: SECRET,
  CORS_ORIGINS: "https://app.example.com",
};

describe("defaults", () => {
  test("an empty environment gives the documented defaults, frozen", () => {
    const c = loadConfig({}, "serve");
    expect(c.env).toBe("development");
    expect(c.databaseUrl).toBe(DEFAULT_DATABASE_URL);
    expect(c.databaseUrl).toBe("postgres://postgres@127.0.0.1:5432/paybridge");
    expect(c.databaseUrlExplicit).toBe(false);
    expect([c.port, c.host]).toEqual([8080, "0.0.0.0"]);
    expect([c.dbPoolMax, c.dbStatementTimeoutMs, c.postingBatchMax, c.postingLanes]).toEqual([
      10, 5000, 16, 2,
    ]);
    expect([c.logLevel, c.logFormat]).toEqual(["info", "json"]);
    expect(c.corsOrigins).toEqual(["*"]);
    expect(c.rateLimitEnabled).toBe(true);
    expect([c.rateLimitApiPerMin, c.rateLimitMoneyPerMin, c.rateLimitBurst]).toEqual([100, 30, 20]);
    expect([c.idempotencyTtlHours, c.holdSweepSeconds]).toEqual([168, 30]);
    expect(c.outboxRelay).toBe(true);
    expect([c.outboxMaxAttempts, c.outboxRetentionHours, c.webhookTimeoutMs]).toEqual([10, 168, 5000]);
    expect(c.reconcileIntervalSeconds).toBe(300);
    expect(c.migrateLockTimeoutSeconds).toBe(300);
    expect([c.shutdownDrainSeconds, c.shutdownTimeoutSeconds]).toEqual([0, 30]);
    for (const k of [
      "jwtSecret",
      "jwtPublicKey",
      "metricsToken",
      "managementPort",
      "redisUrl",
      "natsUrl",
      "webhookUrl",
    ] as const) {
      expect(c[k]).toBeUndefined();
    }
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.corsOrigins)).toBe(true);
  });

  test("values are parsed and trimmed; production drains 5 s by default", () => {
    const c = loadConfig(
      {
        ...PROD_OK,
        PORT: " 9090 ",
        LOG_LEVEL: "DEBUG",
        RATE_LIMIT_ENABLED: "false",
        MIGRATE_LOCK_TIMEOUT_SECONDS: "7",
      },
      "serve",
    );
    expect(c.port).toBe(9090);
    expect(c.logLevel).toBe("debug");
    expect(c.rateLimitEnabled).toBe(false);
    expect(c.migrateLockTimeoutSeconds).toBe(7);
    expect(c.shutdownDrainSeconds).toBe(5);
    expect(c.databaseUrlExplicit).toBe(true);
  });
});

describe("invalid values", () => {
  test("every bad variable is reported at once, one line each", () => {
    const found = problems({
      PORT: "http",
      DB_POOL_MAX: "0",
      DB_STATEMENT_TIMEOUT_MS: "-5",
      POSTING_BATCH_MAX: "0",
      POSTING_LANES: "many",
      PAYBRIDGE_ENV: "staging",
      LOG_LEVEL: "loud",
      LOG_FORMAT: "xml",
      RATE_LIMIT_ENABLED: "maybe",
      REDIS_URL: "http://redis",
      NATS_URL: "nope",
      MIGRATE_LOCK_TIMEOUT_SECONDS: "0",
      TRUSTED_PROXIES: "10.0.0.0/8,not-an-ip",
      CORS_ORIGINS: "https://ok.example.com,ftp:/broken path",
      TLS_CERT_FILE: "/tmp/cert.pem",
      JWT_SECRET: "short",
    });
    for (const name of [
      "PORT",
      "DB_POOL_MAX",
      "DB_STATEMENT_TIMEOUT_MS",
      "POSTING_BATCH_MAX",
      "POSTING_LANES",
      "PAYBRIDGE_ENV",
      "LOG_LEVEL",
      "LOG_FORMAT",
      "RATE_LIMIT_ENABLED",
      "REDIS_URL",
      "NATS_URL",
      "MIGRATE_LOCK_TIMEOUT_SECONDS",
      "TRUSTED_PROXIES",
      "CORS_ORIGINS",
      "TLS_CERT_FILE",
      "JWT_SECRET",
    ]) {
      expect(found.some((p) => p.startsWith(name))).toBe(true);
    }
    expect(found.length).toBe(16);
    for (const p of found) expect(p).not.toContain("\n");
  });

  test("a bad DATABASE_URL is reported without echoing it (it may carry a password)", () => {
    const found = problems({ DATABASE_URL: "mysql://root:hunter2@db/x" }, "migrate");
    expect(found).toEqual(["DATABASE_URL: must be a postgres:// or postgresql:// URL"]);
    expect(problems({ DATABASE_URL: "postgres://db/x?sslmode=sometimes" }, "migrate")[0]).toContain(
      "sslmode",
    );
  });

  test("TRUSTED_PROXIES entries are real addresses or CIDRs (out-of-range octets and prefixes refused)", () => {
    expect(problems({ TRUSTED_PROXIES: "999.1.1.1,10.0.0.0/8,::1/128,10.0.0.0/33" })).toEqual([
      'TRUSTED_PROXIES: "999.1.1.1" is not an IP address or CIDR',
      'TRUSTED_PROXIES: "10.0.0.0/33" is not an IP address or CIDR',
    ]);
  });

  test("JWT_SECRET and JWT_PUBLIC_KEY together is an error; so is drain >= timeout", () => {
    expect(problems({ JWT_SECRET: SECRET, JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nx" })).toEqual([
      "JWT_SECRET and JWT_PUBLIC_KEY: set one, not both",
    ]);
    expect(problems({ SHUTDOWN_DRAIN_SECONDS: "30", SHUTDOWN_TIMEOUT_SECONDS: "30" })[0]).toStartWith(
      "SHUTDOWN_DRAIN_SECONDS",
    );
  });
});

describe("production refusals", () => {
  test("a complete production environment passes", () => {
    expect(problems(PROD_OK)).toEqual([]);
    expect(
      problems({ ...PROD_OK, DATABASE_URL: "postgres://app@db.internal/p?sslmode=verify-full" }),
    ).toEqual([]);
    // A loopback database needs no TLS.
    expect(problems({ ...PROD_OK, DATABASE_URL: "postgres://app@127.0.0.1:5432/p" })).toEqual([]);
  });

  test("no DATABASE_URL", () => {
    const { DATABASE_URL: _, ...env } = PROD_OK;
    expect(problems(env)).toEqual(["DATABASE_URL: required in production"]);
    expect(problems(env, "migrate")).toEqual(["DATABASE_URL: required in production"]);
  });

  test("no JWT key for serve (migrate does not need one)", () => {
    const { JWT_SECRET: _, ...env } = PROD_OK;
    expect(problems(env, "serve")).toEqual(["JWT_SECRET or JWT_PUBLIC_KEY: required in production"]);
    expect(problems(env, "migrate")).toEqual([]);
  });

  test("wildcard CORS (explicit or by default)", () => {
    expect(problems({ ...PROD_OK, CORS_ORIGINS: "*" })).toEqual([
      "CORS_ORIGINS: a wildcard origin is refused in production",
    ]);
    const { CORS_ORIGINS: _, ...env } = PROD_OK;
    expect(loadConfig(env, "serve").corsOrigins).toEqual([]);
  });

  test("a non-loopback URL without sslmode, or with sslmode=disable", () => {
    for (const url of [
      "postgres://app@db.internal:5432/p",
      "postgres://app@db.internal:5432/p?sslmode=disable",
    ]) {
      const found = problems({ ...PROD_OK, DATABASE_URL: url });
      expect(found).toHaveLength(1);
      expect(found[0]).toContain("sslmode=require or verify-full is required");
      expect(problems({ ...PROD_OK, DATABASE_URL: url }, "migrate")).toHaveLength(1);
    }
  });

  test("every production problem at once", () => {
    expect(problems({ PAYBRIDGE_ENV: "production", CORS_ORIGINS: "*" })).toHaveLength(3);
  });
});

describe("per-subcommand validation", () => {
  test("migrate ignores JWT and webhook-secret requirements", () => {
    expect(problems({ JWT_SECRET: "short", WEBHOOK_URL: "https://hooks.example.com/x" }, "migrate")).toEqual(
      [],
    );
    expect(problems({ WEBHOOK_URL: "https://hooks.example.com/x" }, "serve")).toEqual([
      "WEBHOOK_SECRET: required when WEBHOOK_URL is set",
    ]);
  });

  test("redactUrl hides the password", () => {
    expect(redactUrl("postgres://app:hunter2@db:5432/x")).toBe("postgres://app:***@db:5432/x");
    expect(redactUrl("not a url")).toBe("<invalid url>");
  });
});

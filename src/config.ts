// Configuration: the environment is read here and nowhere else. It is parsed once into a
// frozen, typed object; every problem is collected so an operator sees them all at once.

import { parseCidr } from "./http/client-ip.ts";

export const ENVIRONMENTS = ["development", "test", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Most queued postings committed together (src/ledger/batcher.ts); 1 turns batching off. */
export const POSTING_BATCH_MAX_DEFAULT = 16;
/**
 * Posting transactions in flight per process, each lane a connection of its own out of
 * DB_POOL_MAX (at most DB_POOL_MAX - 1, src/db/client.ts createServePools). Fewer lanes make
 * bigger batches. On a 2-core database (A/B, alternating rounds, 16 connections): 2 lanes
 * against 4 gave +15% transfers/s crediting one hot wallet and no clear difference on uniform
 * pairs (medians 0.93 and 0.99 in two runs; pool 2 against pool 4: 1.09 and 1.11); 1 lane
 * left a database core idle (uniform 720/s against ~1,000).
 */
export const POSTING_LANES_DEFAULT = 2;

export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/paybridge";

export type Config = Readonly<{
  env: Environment;
  databaseUrl: string;
  databaseUrlExplicit: boolean;
  port: number;
  host: string;
  dbPoolMax: number;
  dbStatementTimeoutMs: number;
  postingBatchMax: number;
  postingLanes: number;
  logLevel: LogLevel;
  logFormat: "json" | "pretty";
  jwtSecret: string | undefined;
  jwtPublicKey: string | undefined;
  jwtPrivateKey: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  metricsToken: string | undefined;
  managementPort: number | undefined;
  corsOrigins: readonly string[];
  rateLimitEnabled: boolean;
  rateLimitApiPerMin: number;
  rateLimitMoneyPerMin: number;
  rateLimitBurst: number;
  redisUrl: string | undefined;
  trustedProxies: readonly string[];
  idempotencyTtlHours: number;
  holdSweepSeconds: number;
  natsUrl: string | undefined;
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  outboxRelay: boolean;
  outboxMaxAttempts: number;
  outboxRetentionHours: number;
  webhookTimeoutMs: number;
  reconcileIntervalSeconds: number;
  migrateLockTimeoutSeconds: number;
  otelEndpoint: string | undefined;
  shutdownDrainSeconds: number;
  shutdownTimeoutSeconds: number;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
}>;

/** What a subcommand needs checked beyond the common variables. */
export type ConfigPurpose = "serve" | "migrate" | "token" | "relay";

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  str(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problems.push(`${name}: must be an integer from ${min} to ${max} (got "${clip(v)}")`);
      return fallback;
    }
    return Number(v);
  }

  optInt(name: string, min: number, max: number): number | undefined {
    return this.raw(name) === undefined ? undefined : this.int(name, 0, min, max);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const lower = v.toLowerCase();
    if (!(allowed as readonly string[]).includes(lower)) {
      this.problems.push(`${name}: must be one of ${allowed.join(", ")} (got "${clip(v)}")`);
      return fallback;
    }
    return lower as T;
  }

  bool(name: string, fallback: boolean, on = ["true", "1", "yes", "on"], off = ["false", "0", "no", "off"]) {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (on.includes(v)) return true;
    if (off.includes(v)) return false;
    this.problems.push(`${name}: must be true or false (got "${clip(v)}")`);
    return fallback;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error("protocol");
      return v;
    } catch {
      // Never echo the value: URLs carry passwords.
      this.problems.push(
        `${name}: must be a ${protocols.map((p) => p.replace(":", "://")).join(" or ")} URL`,
      );
      return undefined;
    }
  }

  list(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    return v
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  }
}

function clip(v: string): string {
  return v.length > 40 ? `${v.slice(0, 40)}…` : v;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\./.test(h) || h === "";
}

/** Parses the environment. Throws ConfigError listing every problem. */
export function loadConfig(env: Env, purpose: ConfigPurpose): Config {
  const r = new Reader(env);
  const envName = r.oneOf("PAYBRIDGE_ENV", ENVIRONMENTS, "development");
  const production = envName === "production";

  const explicitDb = r.raw("DATABASE_URL");
  const databaseUrl = r.url("DATABASE_URL", ["postgres:", "postgresql:"]) ?? DEFAULT_DATABASE_URL;
  if (explicitDb !== undefined && databaseUrl !== DEFAULT_DATABASE_URL) {
    const mode = new URL(databaseUrl).searchParams.get("sslmode");
    const allowed = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
    if (mode !== null && !allowed.includes(mode)) {
      r.problems.push(`DATABASE_URL: sslmode must be one of ${allowed.join(", ")}`);
    }
  }

  const jwtSecret = r.raw("JWT_SECRET");
  const jwtPublicKey = r.raw("JWT_PUBLIC_KEY");
  const jwtPrivateKey = r.raw("JWT_PRIVATE_KEY");
  const usesJwt = purpose === "serve" || purpose === "token";
  if (usesJwt) {
    if (jwtSecret !== undefined && jwtPublicKey !== undefined) {
      r.problems.push("JWT_SECRET and JWT_PUBLIC_KEY: set one, not both");
    }
    if (jwtSecret !== undefined && jwtSecret.length < 32) {
      r.problems.push("JWT_SECRET: must be at least 32 characters");
    }
    if (jwtPublicKey !== undefined && !jwtPublicKey.includes("-----BEGIN PUBLIC KEY-----")) {
      r.problems.push("JWT_PUBLIC_KEY: must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
    }
    if (jwtPrivateKey !== undefined && !/-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(jwtPrivateKey)) {
      r.problems.push("JWT_PRIVATE_KEY: must be a PEM private key");
    }
  }

  const corsRaw = r.raw("CORS_ORIGINS");
  const corsOrigins = corsRaw === undefined ? (production ? [] : ["*"]) : r.list("CORS_ORIGINS");
  for (const o of corsOrigins) {
    if (o === "*") continue;
    try {
      const u = new URL(o);
      if (u.origin !== o) throw new Error("not an origin");
    } catch {
      r.problems.push(`CORS_ORIGINS: "${clip(o)}" is not an origin like https://app.example.com`);
    }
  }

  const trustedProxies = r.list("TRUSTED_PROXIES");
  for (const p of trustedProxies) {
    if (parseCidr(p) === null) r.problems.push(`TRUSTED_PROXIES: "${clip(p)}" is not an IP address or CIDR`);
  }

  const drainDefault = production ? 5 : 0;
  const cfg: Config = {
    env: envName,
    databaseUrl,
    databaseUrlExplicit: explicitDb !== undefined,
    port: r.int("PORT", 8080, 0, 65535),
    host: r.str("HOST", "0.0.0.0"),
    dbPoolMax: r.int("DB_POOL_MAX", 10, 1, 1000),
    dbStatementTimeoutMs: r.int("DB_STATEMENT_TIMEOUT_MS", 5000, 1, 3_600_000),
    postingBatchMax: r.int("POSTING_BATCH_MAX", POSTING_BATCH_MAX_DEFAULT, 1, 256),
    postingLanes: r.int("POSTING_LANES", POSTING_LANES_DEFAULT, 1, 1000),
    logLevel: r.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    logFormat: r.oneOf("LOG_FORMAT", ["json", "pretty"] as const, "json"),
    jwtSecret,
    jwtPublicKey,
    jwtPrivateKey,
    jwtIssuer: r.raw("JWT_ISSUER"),
    jwtAudience: r.raw("JWT_AUDIENCE"),
    metricsToken: r.raw("METRICS_TOKEN"),
    managementPort: r.optInt("MANAGEMENT_PORT", 1, 65535),
    corsOrigins,
    rateLimitEnabled: r.bool("RATE_LIMIT_ENABLED", true),
    rateLimitApiPerMin: r.int("RATE_LIMIT_API_PER_MIN", 100, 1, 1_000_000),
    rateLimitMoneyPerMin: r.int("RATE_LIMIT_MONEY_PER_MIN", 30, 1, 1_000_000),
    rateLimitBurst: r.int("RATE_LIMIT_BURST", 20, 0, 1_000_000),
    redisUrl: r.url("REDIS_URL", ["redis:", "rediss:"]),
    trustedProxies,
    idempotencyTtlHours: r.int("IDEMPOTENCY_TTL_HOURS", 168, 1, 24 * 365),
    holdSweepSeconds: r.int("HOLD_SWEEP_SECONDS", 30, 1, 86_400),
    natsUrl: r.url("NATS_URL", ["nats:", "tls:"]),
    webhookUrl: r.url("WEBHOOK_URL", ["http:", "https:"]),
    webhookSecret: r.raw("WEBHOOK_SECRET"),
    outboxRelay: r.bool("OUTBOX_RELAY", true),
    outboxMaxAttempts: r.int("OUTBOX_MAX_ATTEMPTS", 10, 1, 1000),
    outboxRetentionHours: r.int("OUTBOX_RETENTION_HOURS", 168, 1, 24 * 365),
    webhookTimeoutMs: r.int("WEBHOOK_TIMEOUT_MS", 5000, 1, 120_000),
    reconcileIntervalSeconds: r.int("RECONCILE_INTERVAL_SECONDS", 300, 0, 86_400),
    migrateLockTimeoutSeconds: r.int("MIGRATE_LOCK_TIMEOUT_SECONDS", 300, 1, 86_400),
    otelEndpoint: r.url("OTEL_EXPORTER_OTLP_ENDPOINT", ["http:", "https:"]),
    shutdownDrainSeconds: r.int("SHUTDOWN_DRAIN_SECONDS", drainDefault, 0, 3600),
    shutdownTimeoutSeconds: r.int("SHUTDOWN_TIMEOUT_SECONDS", 30, 1, 3600),
    tlsCertFile: r.raw("TLS_CERT_FILE"),
    tlsKeyFile: r.raw("TLS_KEY_FILE"),
  };

  if ((cfg.tlsCertFile === undefined) !== (cfg.tlsKeyFile === undefined)) {
    r.problems.push("TLS_CERT_FILE and TLS_KEY_FILE: set both or neither");
  }
  if (cfg.webhookUrl !== undefined && cfg.webhookSecret === undefined && purpose !== "migrate") {
    r.problems.push("WEBHOOK_SECRET: required when WEBHOOK_URL is set");
  }
  if (cfg.managementPort !== undefined && cfg.managementPort === cfg.port) {
    r.problems.push("MANAGEMENT_PORT: must differ from PORT");
  }
  if (cfg.shutdownDrainSeconds >= cfg.shutdownTimeoutSeconds) {
    r.problems.push("SHUTDOWN_DRAIN_SECONDS: must be less than SHUTDOWN_TIMEOUT_SECONDS");
  }

  if (production) {
    if (explicitDb === undefined) r.problems.push("DATABASE_URL: required in production");
    else if (r.problems.every((p) => !p.startsWith("DATABASE_URL"))) {
      const u = new URL(cfg.databaseUrl);
      const mode = u.searchParams.get("sslmode");
      if (!isLoopbackHost(u.hostname) && (mode === null || mode === "disable")) {
        r.problems.push(
          "DATABASE_URL: sslmode=require or verify-full is required for a non-local database in production",
        );
      }
    }
    if (usesJwt && purpose === "serve" && jwtSecret === undefined && jwtPublicKey === undefined) {
      r.problems.push("JWT_SECRET or JWT_PUBLIC_KEY: required in production");
    }
    if (purpose === "serve" && cfg.corsOrigins.includes("*")) {
      r.problems.push("CORS_ORIGINS: a wildcard origin is refused in production");
    }
  }

  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze({
    ...cfg,
    corsOrigins: Object.freeze([...cfg.corsOrigins]),
    trustedProxies: Object.freeze([...cfg.trustedProxies]),
  });
}

/** A copy of the URL safe to print: password removed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}

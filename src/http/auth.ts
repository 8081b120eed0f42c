// Bearer JWT authentication (SPEC §3.1 Auth).
//
// How routes use it:
//   const caller = await authenticate(deps.auth, request);   // 401 when missing/invalid
//   requireAdmin(caller);                                     // 403 for a `user`
//   requireRole(caller, ["user", "admin"]);                   // when a route lists roles
// `authenticate` also records the caller's id in the request's async context so every log
// line written afterwards carries `user_id`.
//
// Keys: HS256 with JWT_SECRET, or RS256/ES256 with JWT_PUBLIC_KEY (the algorithm follows the
// key type, and only that one algorithm is accepted: `alg: none`, HS256 with a public key
// as secret and every other algorithm are refused). `exp` is required; `iss`/`aud` are
// checked when configured. Outside production with no key, a throw-away secret is generated
// and a 12 h admin token minted for the developer (`devAdminToken`); `serve` prints it once.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { Config } from "../config.ts";
import { type Caller, type Role, requestContext } from "../context.ts";
import { ForbiddenError, UnauthorizedError } from "./errors.ts";

export type Authenticator = {
  /** Verifies `Authorization: Bearer <jwt>`; throws UnauthorizedError. */
  verify(authorization: string | null | undefined): Promise<Caller>;
};

export const ROLES: readonly Role[] = ["user", "admin"];
/** Clock skew tolerated on exp/nbf/iat between issuer and PayBridge. */
export const CLOCK_TOLERANCE_SECONDS = 30;
/** Lifetime of the development admin token printed by `serve` without a configured key. */
export const DEV_ADMIN_TOKEN_TTL_SECONDS = 12 * 3600;
export const DEV_ADMIN_SUB = "dev-admin";
/** Longest token accepted; real tokens are a few hundred bytes. */
const MAX_TOKEN_CHARS = 8192;
const MAX_SUB_CHARS = 255;
/**
 * Verified tokens remembered per authenticator (until their `exp`), so a client sending the
 * same token on every request pays the signature check once. Bounded: cleared when full.
 */
const VERIFIED_TOKEN_CACHE_MAX = 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Alg = "HS256" | "RS256" | "ES256";
type VerifyKey = { alg: Alg; key: Uint8Array | KeyObject };

/** Picks the one algorithm a PEM key allows. Throws on keys PayBridge does not support. */
function algForKey(key: KeyObject): "RS256" | "ES256" {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  throw new Error("JWT key: only RSA (RS256) and EC P-256 (ES256) keys are supported");
}

function verifyKeyFrom(config: Config): VerifyKey | undefined {
  if (config.jwtSecret !== undefined)
    return { alg: "HS256", key: new TextEncoder().encode(config.jwtSecret) };
  if (config.jwtPublicKey !== undefined) {
    const key = createPublicKey(config.jwtPublicKey);
    return { alg: algForKey(key), key };
  }
  return undefined;
}

function fromKey(vk: VerifyKey, config: Config): Authenticator {
  // Only successful verifications are cached, each until its own exp (stricter than jose,
  // which tolerates CLOCK_TOLERANCE_SECONDS past it); key, issuer and audience are fixed per
  // authenticator, so a cached answer is the answer jose would give again.
  const verified = new Map<string, { caller: Caller; expiresAtMs: number }>();
  return {
    async verify(authorization) {
      if (authorization === null || authorization === undefined || authorization === "") {
        throw new UnauthorizedError();
      }
      const m = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(authorization.trim());
      if (m === null || m[1] === undefined || m[1].length > MAX_TOKEN_CHARS) {
        throw new UnauthorizedError("The Authorization header must be 'Bearer <token>'.", "malformed token");
      }
      const hit = verified.get(m[1]);
      if (hit !== undefined) {
        if (Date.now() < hit.expiresAtMs) return hit.caller;
        verified.delete(m[1]);
      }
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(m[1], vk.key, {
          algorithms: [vk.alg],
          issuer: config.jwtIssuer,
          audience: config.jwtAudience,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ["exp", "sub"],
        }));
      } catch (err) {
        // Only a fixed description reaches the client, never jose's message.
        const expired = err instanceof joseErrors.JWTExpired;
        throw new UnauthorizedError(
          expired ? "The token has expired." : "The token is invalid.",
          expired ? "token expired" : "invalid token",
        );
      }
      const caller = callerFromClaims(payload);
      if (typeof payload.exp === "number") {
        if (verified.size >= VERIFIED_TOKEN_CACHE_MAX) verified.clear();
        verified.set(m[1], { caller, expiresAtMs: payload.exp * 1000 });
      }
      return caller;
    },
  };
}

function callerFromClaims(payload: Record<string, unknown>): Caller {
  const { sub, role } = payload;
  if (role !== "user" && role !== "admin") {
    throw new UnauthorizedError("The token's role is not recognised.", "unknown role");
  }
  if (typeof sub !== "string" || sub.length === 0 || sub.length > MAX_SUB_CHARS || /\p{Cc}/u.test(sub)) {
    throw new UnauthorizedError("The token's subject is invalid.", "invalid subject");
  }
  // A user's sub is its user id (a uuid); an admin's sub need not be a user.
  if (role === "user" && !UUID.test(sub)) {
    throw new UnauthorizedError("The token's subject is not a user id.", "invalid subject");
  }
  return Object.freeze({ id: role === "user" ? sub.toLowerCase() : sub, role });
}

export type AuthSetup = { auth: Authenticator; devAdminToken?: string; devSecretGenerated: boolean };

/**
 * Builds the authenticator from the configuration. In production a key is mandatory (throws);
 * elsewhere a missing key yields a random secret and a ready admin token for the developer.
 */
export async function createAuthenticator(config: Config): Promise<AuthSetup> {
  const vk = verifyKeyFrom(config);
  if (vk !== undefined) return { auth: fromKey(vk, config), devSecretGenerated: false };
  if (config.env === "production") {
    throw new Error("JWT_SECRET or JWT_PUBLIC_KEY is required in production");
  }
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  const dev: VerifyKey = { alg: "HS256", key: new TextEncoder().encode(secret) };
  const devAdminToken = await sign(dev, config, {
    sub: DEV_ADMIN_SUB,
    role: "admin",
    ttlSeconds: DEV_ADMIN_TOKEN_TTL_SECONDS,
  });
  return { auth: fromKey(dev, config), devAdminToken, devSecretGenerated: true };
}

export type TokenClaims = { sub: string; role: Role; ttlSeconds: number };

async function sign(vk: VerifyKey, config: Config, claims: TokenClaims): Promise<string> {
  let jwt = new SignJWT({ role: claims.role })
    .setProtectedHeader({ alg: vk.alg, typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (config.jwtIssuer !== undefined) jwt = jwt.setIssuer(config.jwtIssuer);
  if (config.jwtAudience !== undefined) jwt = jwt.setAudience(config.jwtAudience);
  return await jwt.sign(vk.key);
}

/** Thrown by mintToken when no signing key is configured (the CLI turns it into exit 1). */
export class NoSigningKeyError extends Error {
  constructor() {
    super("no signing key configured: set JWT_SECRET (HS256) or JWT_PRIVATE_KEY (RS256/ES256)");
    this.name = "NoSigningKeyError";
  }
}

/** Mints a token with the configured key: HS256 with JWT_SECRET, else RS256/ES256 with JWT_PRIVATE_KEY. */
export async function mintToken(config: Config, claims: TokenClaims): Promise<string> {
  if (config.jwtSecret !== undefined) {
    return await sign({ alg: "HS256", key: new TextEncoder().encode(config.jwtSecret) }, config, claims);
  }
  if (config.jwtPrivateKey !== undefined) {
    const key = createPrivateKey(config.jwtPrivateKey);
    return await sign({ alg: algForKey(createPublicKey(key)), key }, config, claims);
  }
  throw new NoSigningKeyError();
}

/** Verifies the request's bearer token and records the caller in the async request context. */
/** One verification per request: the rate limiter and the route guard share its result. */
const verified = new WeakMap<Request, Promise<Caller>>();

/** The request's bearer token, verified once per request (rejects like `auth.verify`). */
export function verifyRequest(auth: Authenticator, request: Request): Promise<Caller> {
  let p = verified.get(request);
  if (p === undefined) {
    p = auth.verify(request.headers.get("authorization"));
    verified.set(request, p);
  }
  return p;
}

export async function authenticate(auth: Authenticator, request: Request): Promise<Caller> {
  const caller = await verifyRequest(auth, request);
  const ids = requestContext.getStore();
  if (ids !== undefined) ids.userId = caller.id;
  return caller;
}

export function requireAdmin(caller: Caller): void {
  if (caller.role !== "admin") throw new ForbiddenError("This action requires the admin role.");
}

export function requireRole(caller: Caller, roles: readonly Role[]): void {
  if (!roles.includes(caller.role))
    throw new ForbiddenError(`This action requires one of the roles: ${roles.join(", ")}.`);
}

/** True when `caller` may see resources owned by `ownerId` (admins see everything). */
export function canAccess(caller: Caller, ownerId: string): boolean {
  return caller.role === "admin" || caller.id === ownerId;
}

/** Callers of requests in flight, set by `guard` before validation runs. */
const callers = new WeakMap<Request, Caller>();

/**
 * Route hook (use as `transform`, which runs BEFORE body/params validation): authenticates
 * (401) and checks the role (403), so an anonymous client learns nothing from validation
 * errors. The handler then reads the caller with `callerOf(request)`.
 */
export function guard(auth: Authenticator, roles: readonly Role[]) {
  return async ({ request }: { request: Request }): Promise<void> => {
    const caller = await authenticate(auth, request);
    requireRole(caller, roles);
    callers.set(request, caller);
  };
}

/** The caller `guard` verified for this request. */
export function callerOf(request: Request): Caller {
  const caller = callers.get(request);
  if (caller === undefined) throw new UnauthorizedError();
  return caller;
}

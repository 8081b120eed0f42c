// JWT verification rules (SPEC §3.1 Auth): algorithms, required claims, roles, iss/aud, and
// the development fallback. Pure: no database.
import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { SignJWT, UnsecuredJWT } from "jose";
import { loadConfig } from "../../src/config.ts";
import { createAuthenticator, mintToken, requireAdmin, verifyRequest } from "../../src/http/auth.ts";
import { AppError } from "../../src/http/errors.ts";

const SECRET = "s".repeat(40);
const USER_ID = "7f1c1d52-6f1e-4c5a-9e59-0b4b7c9d1a23";
const hsConfig = loadConfig({ JWT_SECRET: SECRET, PAYBRIDGE_ENV: "test" }, "serve");
const enc = (s: string) => new TextEncoder().encode(s);

async function status401(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    const err = e as AppError;
    expect(err.status).toBe(401);
    expect(err.headers?.["WWW-Authenticate"]).toStartWith("Bearer");
    return err;
  }
  throw new Error("expected 401");
}

const hs = (
  claims: Record<string, unknown>,
  exp: number | null = Math.floor(Date.now() / 1000) + 60,
  key = SECRET,
) => {
  let j = new SignJWT(claims).setProtectedHeader({ alg: "HS256" });
  if (exp !== null) j = j.setExpirationTime(exp);
  return j.sign(enc(key));
};

describe("HS256", async () => {
  const { auth, devSecretGenerated, devAdminToken } = await createAuthenticator(hsConfig);

  test("a configured secret generates no dev token", () => {
    expect(devSecretGenerated).toBe(false);
    expect(devAdminToken).toBeUndefined();
  });

  test("minted tokens verify", async () => {
    const tok = await mintToken(hsConfig, { sub: USER_ID, role: "user", ttlSeconds: 60 });
    expect(await auth.verify(`Bearer ${tok}`)).toEqual({ id: USER_ID, role: "user" });
    const admin = await mintToken(hsConfig, { sub: "ops-bot", role: "admin", ttlSeconds: 60 });
    expect(await auth.verify(`bearer ${admin}`)).toEqual({ id: "ops-bot", role: "admin" });
  });

  test.each([
    ["missing", null],
    ["empty", ""],
    ["basic scheme", "Basic dXNlcjpwYXNz"],
    ["no token", "Bearer "],
    ["garbage", "Bearer not.a.jwt"],
  ])("%s header → 401", async (_n, header) => {
    await status401(auth.verify(header));
  });

  test("wrong secret, expired, no exp, unknown role, bad sub → 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    await status401(
      auth.verify(`Bearer ${await hs({ sub: USER_ID, role: "user" }, now + 60, "x".repeat(40))}`),
    );
    const expired = await status401(
      auth.verify(`Bearer ${await hs({ sub: USER_ID, role: "user" }, now - 3600)}`),
    );
    expect(expired.detail).toContain("expired");
    await status401(auth.verify(`Bearer ${await hs({ sub: USER_ID, role: "user" }, null)}`));
    await status401(auth.verify(`Bearer ${await hs({ sub: USER_ID, role: "root" })}`));
    await status401(auth.verify(`Bearer ${await hs({ sub: USER_ID })}`));
    await status401(auth.verify(`Bearer ${await hs({ role: "admin" })}`));
    await status401(auth.verify(`Bearer ${await hs({ sub: "not-a-uuid", role: "user" })}`));
  });

  test("alg none is refused", async () => {
    const none = new UnsecuredJWT({ sub: USER_ID, role: "admin" }).setExpirationTime("1h").encode();
    await status401(auth.verify(`Bearer ${none}`));
  });

  test("HS512 with the right secret is refused (unexpected algorithm)", async () => {
    const tok = await new SignJWT({ sub: USER_ID, role: "admin" })
      .setProtectedHeader({ alg: "HS512" })
      .setExpirationTime("1h")
      .sign(enc(SECRET));
    await status401(auth.verify(`Bearer ${tok}`));
  });

  test("requireAdmin → 403 for users", () => {
    expect(() => requireAdmin({ id: USER_ID, role: "user" })).toThrow(AppError);
    requireAdmin({ id: "x", role: "admin" });
  });
});

describe("issuer and audience", async () => {
  const cfg = loadConfig({ JWT_SECRET: SECRET, JWT_ISSUER: "iss-a", JWT_AUDIENCE: "aud-a" }, "serve");
  const { auth } = await createAuthenticator(cfg);
  test("checked when configured", async () => {
    const good = await mintToken(cfg, { sub: USER_ID, role: "user", ttlSeconds: 60 });
    expect((await auth.verify(`Bearer ${good}`)).id).toBe(USER_ID);
    const wrongIss = await new SignJWT({ sub: USER_ID, role: "user" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("iss-b")
      .setAudience("aud-a")
      .setExpirationTime("1h")
      .sign(enc(SECRET));
    await status401(auth.verify(`Bearer ${wrongIss}`));
    const noAud = await hs({ sub: USER_ID, role: "user", iss: "iss-a" });
    await status401(auth.verify(`Bearer ${noAud}`));
  });
});

describe.each(["rsa", "ec"] as const)("%s keys", (type) => {
  const pair =
    type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pub = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
  const priv = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const cfg = loadConfig({ JWT_PUBLIC_KEY: pub, JWT_PRIVATE_KEY: priv }, "token");

  test("mint with the private key, verify with the public key; HS256 with the public key as secret refused", async () => {
    const { auth } = await createAuthenticator(cfg);
    const tok = await mintToken(cfg, { sub: USER_ID, role: "user", ttlSeconds: 60 });
    const header = JSON.parse(Buffer.from(tok.split(".")[0] ?? "", "base64url").toString());
    expect(header.alg).toBe(type === "rsa" ? "RS256" : "ES256");
    expect(await auth.verify(`Bearer ${tok}`)).toEqual({ id: USER_ID, role: "user" });
    const confused = await hs({ sub: USER_ID, role: "admin" }, Math.floor(Date.now() / 1000) + 60, pub);
    await status401(auth.verify(`Bearer ${confused}`));
  });
});

describe("no key configured", () => {
  test("outside production: a random secret and a 12h admin token", async () => {
    const cfg = loadConfig({ PAYBRIDGE_ENV: "development" }, "serve");
    const { auth, devAdminToken, devSecretGenerated } = await createAuthenticator(cfg);
    expect(devSecretGenerated).toBe(true);
    expect(devAdminToken).toBeString();
    const caller = await auth.verify(`Bearer ${devAdminToken}`);
    expect(caller.role).toBe("admin");
    const payload = JSON.parse(Buffer.from(devAdminToken?.split(".")[1] ?? "", "base64url").toString());
    expect(payload.exp - payload.iat).toBe(12 * 3600);
    // a second authenticator has a different secret
    const other = await createAuthenticator(cfg);
    await status401(other.auth.verify(`Bearer ${devAdminToken}`));
  });

  test("production without a key throws; mintToken without a key throws", async () => {
    const cfg = { ...loadConfig({}, "migrate"), env: "production" as const };
    expect(createAuthenticator(cfg)).rejects.toThrow(/required in production/);
    expect(mintToken(loadConfig({}, "token"), { sub: "a", role: "admin", ttlSeconds: 5 })).rejects.toThrow(
      /no signing key/,
    );
  });
});

describe("one verification per request", () => {
  test("the rate limiter and the route guard share verifyRequest's result", async () => {
    let calls = 0;
    const auth = {
      verify: async () => {
        calls++;
        return { id: "00000000-0000-4000-8000-000000000001", role: "user" as const };
      },
    };
    const request = new Request("http://localhost/api/v1/wallets", {
      headers: { authorization: "Bearer x" },
    });
    const [a, b] = await Promise.all([verifyRequest(auth, request), verifyRequest(auth, request)]);
    expect(a).toBe(b);
    await verifyRequest(auth, new Request("http://localhost/", { headers: { authorization: "Bearer x" } }));
    expect(calls).toBe(2);
  });
});

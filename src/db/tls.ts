// Database TLS from DATABASE_URL, with libpq's meaning of `sslmode` (postgres.js alone knows
// only part of it, and would send `sslrootcert` to the server as a startup parameter, which
// PostgreSQL rejects):
//   disable            no TLS
//   allow, prefer      TLS when the server offers it, unverified
//   require            TLS, unverified (libpq: with sslrootcert it verifies the CA, as here)
//   verify-ca          TLS, certificate chain checked against sslrootcert (or system CAs)
//   verify-full        verify-ca + the certificate must name the host we connected to
// `sslrootcert=<file>` (PEM) names the CA; `sslrootcert=system` uses the system store.
// `sslcert`/`sslkey` add a client certificate. The files are read once, at pool creation.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import {
  checkServerIdentity,
  type PeerCertificate,
  type ConnectionOptions as TlsConnectionOptions,
} from "node:tls";

export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";
const SSL_MODES: readonly SslMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/** What postgres.js takes as `ssl`. */
export type PgSsl = false | "prefer" | "require" | TlsConnectionOptions;

/** Parameters only the client reads: removed from the URL so the server never sees them. */
const CLIENT_ONLY_PARAMS = ["sslmode", "sslrootcert", "sslcert", "sslkey", "ssl"] as const;

export class DatabaseTlsError extends Error {
  constructor(message: string) {
    super(`DATABASE_URL: ${message}`);
    this.name = "DatabaseTlsError";
  }
}

function readPem(param: string, path: string): string {
  try {
    const text = readFileSync(path, "utf8");
    if (!text.includes("-----BEGIN ")) throw new Error("not PEM");
    return text;
  } catch (err) {
    const why = err instanceof Error && err.message === "not PEM" ? "is not a PEM file" : "cannot be read";
    throw new DatabaseTlsError(`${param} file "${path}" ${why}`);
  }
}

/**
 * The TLS options for a DATABASE_URL: `url` is the URL to hand to postgres.js (client-only
 * parameters removed) and `ssl` its `ssl` option. Throws DatabaseTlsError (a clear line, no
 * password) on an unknown sslmode or an unreadable certificate file.
 */
export function sslOptions(databaseUrl: string): { url: string; ssl: PgSsl } {
  const u = new URL(databaseUrl);
  const p = u.searchParams;
  // postgres.js's own `ssl=true` verifies against the system CAs: keep that meaning.
  const rawMode = p.get("sslmode") ?? (p.get("ssl") === "true" ? "verify-full" : null);
  const rootcert = p.get("sslrootcert");
  const certFile = p.get("sslcert");
  const keyFile = p.get("sslkey");
  for (const k of CLIENT_ONLY_PARAMS) p.delete(k);
  const url = u.toString();

  if (rawMode !== null && !(SSL_MODES as readonly string[]).includes(rawMode)) {
    throw new DatabaseTlsError(`sslmode must be one of ${SSL_MODES.join(", ")}`);
  }
  // Without sslmode: plain TCP (as before), unless a root certificate is named: then the
  // intent is clearly a verified connection (libpq 16 does the same for sslrootcert=system).
  let mode: SslMode = (rawMode as SslMode | null) ?? (rootcert !== null ? "verify-full" : "disable");
  if (mode === "disable") return { url, ssl: false };
  if (mode === "allow" || mode === "prefer") return { url, ssl: "prefer" };
  if (mode === "require" && rootcert !== null) mode = "verify-ca";

  const client: TlsConnectionOptions = {};
  if (certFile !== null) client.cert = readPem("sslcert", certFile);
  if (keyFile !== null) client.key = readPem("sslkey", keyFile);
  if (mode === "require") {
    return {
      url,
      ssl: Object.keys(client).length > 0 ? { ...client, rejectUnauthorized: false } : "require",
    };
  }

  const ca = rootcert === null || rootcert === "system" ? undefined : readPem("sslrootcert", rootcert);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const ssl: TlsConnectionOptions = {
    ...client,
    ...(ca !== undefined ? { ca } : {}),
    rejectUnauthorized: true,
    // SNI only for names (an IP literal in SNI is not allowed).
    ...(isIP(host) === 0 ? { servername: host } : {}),
    // The chain is always checked (rejectUnauthorized); the name only for verify-full. The
    // check is explicit because the socket is upgraded in place and carries no host name.
    checkServerIdentity:
      mode === "verify-full"
        ? (_: string, cert: PeerCertificate) => checkServerIdentity(host, cert)
        : () => undefined,
  };
  return { url, ssl };
}

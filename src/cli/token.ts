// `paybridge token --sub ID --role user|admin [--ttl 15m]`: prints a JWT signed with the
// configured key on stdout (HS256 with JWT_SECRET, RS256/ES256 with JWT_PRIVATE_KEY).
import { loadConfig } from "../config.ts";
import { mintToken, NoSigningKeyError } from "../http/auth.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./usage.ts";

export const DEFAULT_TTL_SECONDS = 15 * 60;
/** Longest lifetime a minted token may have. */
export const MAX_TTL_SECONDS = 30 * 86_400;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseTtl(raw: string): number {
  const m = /^(\d{1,7})([smhd])$/.exec(raw);
  if (m === null)
    throw new UsageError(`--ttl: expected a duration like 90s, 15m, 12h or 7d (got "${raw.slice(0, 20)}")`);
  const seconds = Number(m[1]) * (UNIT_SECONDS[m[2] ?? "s"] ?? 1);
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw new UsageError("--ttl: must be between 1s and 30d");
  return seconds;
}

export function parseTokenArgs(args: string[]): { sub: string; role: "user" | "admin"; ttlSeconds: number } {
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const eq = arg.indexOf("=");
    const [name, inline] =
      arg.startsWith("--") && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    if (name !== "--sub" && name !== "--role" && name !== "--ttl")
      throw new UsageError(`unknown argument "${arg}"`);
    const value = inline ?? args[++i];
    if (value === undefined || value === "") throw new UsageError(`${name}: missing value`);
    if (values[name] !== undefined) throw new UsageError(`${name}: given twice`);
    values[name] = value;
  }
  const sub = values["--sub"];
  const role = values["--role"];
  if (sub === undefined) throw new UsageError("--sub is required");
  if (role === undefined) throw new UsageError("--role is required (user or admin)");
  if (role !== "user" && role !== "admin")
    throw new UsageError(`--role: must be user or admin (got "${role.slice(0, 20)}")`);
  if (sub.length > 255 || /\p{Cc}/u.test(sub)) throw new UsageError("--sub: 1-255 printable characters");
  if (role === "user" && !UUID.test(sub))
    throw new UsageError("--sub: a user token's subject must be the user's id (a uuid)");
  return {
    sub,
    role,
    ttlSeconds: values["--ttl"] === undefined ? DEFAULT_TTL_SECONDS : parseTtl(values["--ttl"]),
  };
}

export async function tokenCommand(args: string[], env: Record<string, string | undefined>): Promise<number> {
  const claims = parseTokenArgs(args);
  const config = loadConfig(env, "token");
  try {
    process.stdout.write(`${await mintToken(config, claims)}\n`);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof NoSigningKeyError) {
      process.stderr.write(`paybridge token: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    throw err;
  }
}

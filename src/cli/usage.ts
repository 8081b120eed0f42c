// Usage text and the exit codes of SPEC §1: 0 success, 1 runtime failure, 2 usage error.
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Thrown for a usage error (unknown verb, missing or malformed argument): exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const USAGE = `paybridge — wallet and payments service

Usage:
  paybridge serve                      API, /metrics and health routes (+ outbox relay unless OUTBOX_RELAY=off)
  paybridge migrate <verb> [args]      database migrations (paybridge migrate help)
  paybridge token --sub ID --role user|admin [--ttl 15m]
                                       mint a JWT with the configured key
  paybridge relay                      the outbox relay alone
  paybridge version                    version, git commit, build time, Bun version
  paybridge help | --help | -h         this text

Configuration comes from environment variables only (see README.md).
Exit codes: 0 success, 1 runtime failure, 2 usage error.
`;

// Placeholder contract (the API-core work replaces the body): verifies bearer tokens.
import type { Caller } from "../context.ts";

export type Authenticator = {
  /** Verifies `Authorization: Bearer <jwt>`; throws UnauthorizedError. */
  verify(authorization: string | null | undefined): Promise<Caller>;
};

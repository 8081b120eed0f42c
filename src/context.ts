// Who is acting and under which request. Services receive a RequestScope explicitly (never
// the Elysia context); the same values are also kept in AsyncLocalStorage so log lines
// written deep inside a service carry the request's ids.
import { AsyncLocalStorage } from "node:async_hooks";

export type Role = "user" | "admin";
/** The caller of a request, from a verified token. */
export type Caller = Readonly<{ id: string; role: Role }>;
/** Who caused a change: a caller, or the service itself (hold expiry, sweeps). */
export type Actor = Readonly<{ id: string; role: Role | "system" }>;
export const SYSTEM_ACTOR: Actor = Object.freeze({ id: "paybridge", role: "system" });

export type RequestScope = Readonly<{
  actor: Actor;
  requestId: string;
  correlationId: string;
  traceId: string;
  spanId: string;
}>;

export type RequestIds = {
  requestId: string;
  correlationId: string;
  traceId: string;
  spanId: string;
  userId?: string;
};

export const requestContext = new AsyncLocalStorage<RequestIds>();

/** A scope for background work (sweeps, relay): a fresh trace, the system actor. */
export function systemScope(): RequestScope {
  const traceId = crypto.randomUUID().replaceAll("-", "");
  return {
    actor: SYSTEM_ACTOR,
    requestId: crypto.randomUUID(),
    correlationId: crypto.randomUUID(),
    traceId,
    spanId: traceId.slice(0, 16),
  };
}

// The transaction state machine (SPEC §2.4) as data. Only PAYOUTs (holds) ever leave their
// first status; every other type is born COMPLETED and final. pb_hold_action (migration
// 00006) enforces the same table under the row lock; test/money/transitions.test.ts drives
// every (status, action) pair through the database and compares with this table.
import type { TxStatus } from "./types.ts";

export const HOLD_ACTIONS = ["complete", "fail", "cancel", "retry", "expire"] as const;
export type HoldAction = (typeof HOLD_ACTIONS)[number];

/** Payouts may be retried this many times after failing (SPEC §2.4). */
export const MAX_RETRIES = 3;

export const HOLD_TRANSITIONS: Readonly<Record<TxStatus, Partial<Record<HoldAction, TxStatus>>>> = {
  PENDING: { complete: "COMPLETED", fail: "FAILED", cancel: "CANCELLED", expire: "CANCELLED" },
  FAILED: { retry: "PENDING" },
  COMPLETED: {},
  CANCELLED: {},
};

/** The status a PAYOUT reaches by `action`, or undefined when the transition is illegal (409). */
export function nextHoldStatus(status: TxStatus, action: HoldAction): TxStatus | undefined {
  switch (status) {
    case "PENDING":
    case "FAILED":
    case "COMPLETED":
    case "CANCELLED":
      return HOLD_TRANSITIONS[status][action];
    default: {
      const never: never = status;
      throw new Error(`unknown status ${String(never)}`);
    }
  }
}

// Users and KYC: wire shapes, the KYC state machine as data, and rendering.
import { t } from "elysia";
import { paginationQuery } from "../../http/pagination.ts";
import { Timestamp, Uuid } from "../../http/schemas.ts";

export const KYC_STATUSES = ["UNVERIFIED", "PENDING", "VERIFIED", "REJECTED"] as const;
export type KycStatus = (typeof KYC_STATUSES)[number];
export type KycAction = "start" | "approve" | "reject";

/** SPEC §2.2. VERIFIED is final: no action lists it as a source. */
export const KYC_TRANSITIONS: Readonly<Record<KycAction, { from: readonly KycStatus[]; to: KycStatus }>> = {
  start: { from: ["UNVERIFIED", "REJECTED"], to: "PENDING" },
  approve: { from: ["PENDING"], to: "VERIFIED" },
  reject: { from: ["PENDING"], to: "REJECTED" },
};

export function kycEventType(
  action: KycAction,
): "user.kyc.started" | "user.kyc.approved" | "user.kyc.rejected" {
  switch (action) {
    case "start":
      return "user.kyc.started";
    case "approve":
      return "user.kyc.approved";
    case "reject":
      return "user.kyc.rejected";
    default: {
      const never: never = action;
      throw new Error(`unknown KYC action ${String(never)}`);
    }
  }
}

/** Field limits (SPEC §2.2); the database checks the same bounds. */
export const EMAIL_MAX_CHARS = 254;
export const FULL_NAME_MAX_CHARS = 255;
export const KYC_REASON_MAX_CHARS = 1000;
/** Raw input may carry surrounding blanks that are trimmed; anything far longer is refused early. */
const RAW_SLACK_CHARS = 64;

export const KycStatusSchema = t.Union([
  t.Literal("UNVERIFIED"),
  t.Literal("PENDING"),
  t.Literal("VERIFIED"),
  t.Literal("REJECTED"),
]);

export const UserSchema = t.Object(
  {
    id: Uuid,
    email: t.String(),
    full_name: t.String(),
    kyc_status: KycStatusSchema,
    kyc_reason: t.Union([t.String(), t.Null()], { description: "reason of the last rejection" }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { title: "User" },
);

export const RegisterBody = t.Object(
  {
    email: t.String({ maxLength: EMAIL_MAX_CHARS + RAW_SLACK_CHARS, description: "trimmed and lower-cased" }),
    full_name: t.String({
      maxLength: FULL_NAME_MAX_CHARS + RAW_SLACK_CHARS,
      description: "1–255 characters after trim",
    }),
  },
  { additionalProperties: false },
);

export const KycDecisionBody = t.Object(
  {
    approved: t.Boolean(),
    reason: t.Optional(
      t.String({ maxLength: KYC_REASON_MAX_CHARS + RAW_SLACK_CHARS, description: "required when rejecting" }),
    ),
  },
  { additionalProperties: false },
);

export const UserListQuery = t.Object(
  {
    ...paginationQuery,
    kyc_status: t.Optional(KycStatusSchema),
    email: t.Optional(t.String({ maxLength: EMAIL_MAX_CHARS + RAW_SLACK_CHARS })),
  },
  { additionalProperties: false },
);

export type UserRow = {
  id: string;
  email: string;
  full_name: string;
  kyc_status: KycStatus;
  kyc_reason: string | null;
  created_at: Date;
  updated_at: Date;
  cursor_ts?: string;
};

export type User = {
  id: string;
  email: string;
  full_name: string;
  kyc_status: KycStatus;
  kyc_reason: string | null;
  created_at: string;
  updated_at: string;
};

export function renderUser(r: UserRow): User {
  return {
    id: r.id,
    email: r.email,
    full_name: r.full_name,
    kyc_status: r.kyc_status,
    kyc_reason: r.kyc_reason,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

/** Event data for user.*: no personal data (no email, no name). */
export function userEventData(r: UserRow): Record<string, unknown> {
  return {
    id: r.id,
    kyc_status: r.kyc_status,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

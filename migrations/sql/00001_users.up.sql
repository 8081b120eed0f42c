-- Users and their KYC state. Email is stored trimmed and lower-cased (the service
-- normalises it; the check makes the database refuse anything else).
CREATE TABLE users (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email             text NOT NULL CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 254),
  full_name         text NOT NULL CHECK (length(btrim(full_name)) BETWEEN 1 AND 255),
  kyc_status        text NOT NULL DEFAULT 'UNVERIFIED'
                    CHECK (kyc_status IN ('UNVERIFIED', 'PENDING', 'VERIFIED', 'REJECTED')),
  kyc_reason        text CHECK (kyc_reason IS NULL OR length(kyc_reason) BETWEEN 1 AND 1000),
  kyc_actor         jsonb,
  -- last event sequence written for this aggregate (outbox.sequence); survives outbox purges
  event_seq         integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_kyc_created_idx ON users (kyc_status, created_at DESC, id DESC);

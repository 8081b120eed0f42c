// The static, ordered registry of migrations compiled into the binary. The binary never
// reads migrations from disk; `paybridge migrate create` appends here, and a test proves
// this list equals the files in migrations/.
import * as m00001 from "../../migrations/00001_users.ts";
import * as m00002 from "../../migrations/00002_wallets.ts";
import * as m00003 from "../../migrations/00003_transactions_ledger.ts";
import * as m00004 from "../../migrations/00004_idempotency_outbox.ts";
import * as m00005 from "../../migrations/00005_runtime_grants.ts";
import * as m00006 from "../../migrations/00006_money_path.ts";
import * as m00007 from "../../migrations/00007_outbox_relay.ts";
import * as m00008 from "../../migrations/00008_money_path_leaner.ts";
import * as m00009 from "../../migrations/00009_money_path_plans.ts";
import * as m00010 from "../../migrations/00010_check_rules_per_row.ts";
import * as m00011 from "../../migrations/00011_money_path_index_lookups.ts";
import * as m00012 from "../../migrations/00012_posting_batches.ts";
import type { Sql } from "./client.ts";

export type MigrationModule = {
  source: { up: string; down: string };
  up: (sql: Sql) => unknown;
  down: (sql: Sql) => unknown;
  /** Set to false (exported as `transactional`) for a migration that cannot run in a transaction. */
  transactional?: boolean;
};
export type RegisteredMigration = { name: string; version: number; module: MigrationModule };

export const MIGRATIONS: readonly RegisteredMigration[] = [
  { name: "00001_users.ts", version: 1, module: m00001 },
  { name: "00002_wallets.ts", version: 2, module: m00002 },
  { name: "00003_transactions_ledger.ts", version: 3, module: m00003 },
  { name: "00004_idempotency_outbox.ts", version: 4, module: m00004 },
  { name: "00005_runtime_grants.ts", version: 5, module: m00005 },
  { name: "00006_money_path.ts", version: 6, module: m00006 },
  { name: "00007_outbox_relay.ts", version: 7, module: m00007 },
  { name: "00008_money_path_leaner.ts", version: 8, module: m00008 },
  { name: "00009_money_path_plans.ts", version: 9, module: m00009 },
  { name: "00010_check_rules_per_row.ts", version: 10, module: m00010 },
  { name: "00011_money_path_index_lookups.ts", version: 11, module: m00011 },
  { name: "00012_posting_batches.ts", version: 12, module: m00012 },
  // @registry-end (paybridge migrate create inserts above this line)
];

/** The schema version this binary expects (the highest registered). */
export const EXPECTED_SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

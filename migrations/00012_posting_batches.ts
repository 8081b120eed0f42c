import type { Sql } from "../src/db/client.ts";
import downSql from "./sql/00012_posting_batches.down.sql" with { type: "text" };
import upSql from "./sql/00012_posting_batches.up.sql" with { type: "text" };

export const source = { up: upSql, down: downSql };
export const up = (sql: Sql) => sql.unsafe(upSql);
export const down = (sql: Sql) => sql.unsafe(downSql);

import type { Sql } from "../src/db/client.ts";
import downSql from "./sql/00010_check_rules_per_row.down.sql" with { type: "text" };
import upSql from "./sql/00010_check_rules_per_row.up.sql" with { type: "text" };

export const source = { up: upSql, down: downSql };
export const up = (sql: Sql) => sql.unsafe(upSql);
export const down = (sql: Sql) => sql.unsafe(downSql);

import type { Sql } from "../src/db/client.ts";
import money06Down from "./sql/00006_money_path.down.sql" with { type: "text" };
import money06Up from "./sql/00006_money_path.up.sql" with { type: "text" };
import downSql from "./sql/00008_money_path_leaner.down.sql" with { type: "text" };
import upSql from "./sql/00008_money_path_leaner.up.sql" with { type: "text" };

export const source = { up: upSql, down: downSql };
export const up = (sql: Sql) => sql.unsafe(upSql);
// Back to the exact 00006/00007 definitions by replaying 00006's own SQL (immutable, and
// checksummed as 00006) around this file's down, rather than keeping a second copy of the old
// functions here.
export const down = (sql: Sql) => sql.unsafe([money06Down, downSql, money06Up].join("\n"));

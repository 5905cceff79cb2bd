/** `strata ltx`: the LTX files of a replica, per level. */

import { formatTXID } from "../ltx/mod.ts";
import { ALL_LEVELS } from "../restore/mod.ts";
import { BRANCH_SOURCE_FLAGS, CONFIG_FLAGS, parse, replicasFor, wantsHelp } from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  ...BRANCH_SOURCE_FLAGS,
  level: { type: "string", value: "N|all", help: "level to list (default 0, as Litestream)" },
  json: { type: "bool", help: "print JSON" },
};

export async function runLtx(argv: string[]): Promise<number> {
  if (wantsHelp(argv, "Usage: strata ltx [-level N|all] [-json] DB_PATH|REPLICA_URL", FLAGS)) {
    return 0;
  }
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("need exactly one DB_PATH or REPLICA_URL");
  const lv = flags.strings.get("level") ?? "0";
  let levels = ALL_LEVELS;
  if (lv !== "all") {
    const n = Number(lv);
    if (!Number.isInteger(n) || n < 0 || n > 9) {
      throw new UsageError(`-level must be 0..9 or all, got ${lv}`);
    }
    levels = [n];
  }
  const { clients } = await replicasFor(flags.args[0], flags);
  const rows = [];
  for (const c of clients) {
    for (const level of levels) {
      for (const f of await c.listFiles(level)) {
        const min = formatTXID(f.minTXID);
        const max = formatTXID(f.maxTXID);
        const at = f.createdAt.toISOString();
        rows.push({
          // Litestream's fields, then the names earlier strata printed (kept for scripts)
          level,
          min_txid: min,
          max_txid: max,
          size: f.size,
          timestamp: at,
          replica: c.location,
          minTXID: min,
          maxTXID: max,
          createdAt: at,
        });
      }
    }
  }
  if (flags.bools.has("json")) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    console.log("level\tmin_txid\tmax_txid\tsize\tcreated");
    for (const r of rows) {
      console.log(`${r.level}\t${r.minTXID}\t${r.maxTXID}\t${r.size}\t${r.createdAt}`);
    }
  }
  return 0;
}

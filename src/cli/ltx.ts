/** `strata ltx`: the LTX files of a replica, per level. */

import { formatTXID } from "../ltx/mod.ts";
import { ALL_LEVELS } from "../restore/mod.ts";
import { BRANCH_SOURCE_FLAGS, CONFIG_FLAGS, parse, replicasFor, wantsHelp } from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  ...BRANCH_SOURCE_FLAGS,
  level: { type: "string", value: "N|all", help: "level to list (default all)" },
  json: { type: "bool", help: "print JSON" },
};

export async function runLtx(argv: string[]): Promise<number> {
  if (wantsHelp(argv, "Usage: strata ltx [-level N|all] [-json] DB_PATH|REPLICA_URL", FLAGS)) {
    return 0;
  }
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("need exactly one DB_PATH or REPLICA_URL");
  const lv = flags.strings.get("level") ?? "all";
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
        rows.push({
          replica: c.location,
          level,
          minTXID: formatTXID(f.minTXID),
          maxTXID: formatTXID(f.maxTXID),
          size: f.size,
          createdAt: f.createdAt.toISOString(),
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

/** `strata timeline`: what a replica can be restored to, for terminals and scripts. */

import { replicaName } from "../storage/mod.ts";
import { formatTXID } from "../ltx/mod.ts";
import { log } from "../log.ts";
import { listBranches } from "../branch/mod.ts";
import { listAllFiles } from "../restore/plan.ts";
import { buildTimeline, granularity, timelineJson } from "../restore/timeline.ts";
import { BRANCH_SOURCE_FLAGS, CONFIG_FLAGS, parse, replicasFor, wantsHelp } from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  ...BRANCH_SOURCE_FLAGS,
  json: { type: "bool", help: "print JSON: every restore point, the windows and the branches" },
};

const USAGE = `Usage: strata timeline [-config PATH] [-json] DB_PATH|REPLICA_URL

What each replica can be restored to: from its oldest snapshot to its newest
file, the windows where every L0 file (each sync), every L1/L2/... boundary
or only the snapshots can be restored, and the branches made from it. A
point marked "-txid" is reached by -txid only (-timestamp at its time gives a
later one).`;

export async function runTimeline(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("need exactly one DB_PATH or REPLICA_URL");
  const { clients } = await replicasFor(flags.args[0], flags);
  const out = [];
  for (const c of clients) {
    const branches = await listBranches(c).catch((e) => {
      log("warn", `branches of ${c.location} cannot be read: ${(e as Error).message}`);
      return [];
    });
    const t = buildTimeline(await listAllFiles(c), branches);
    out.push({ replica: replicaName(c), t });
  }
  if (flags.bools.has("json")) {
    console.log(
      JSON.stringify(out.map((o) => ({ replica: o.replica, ...timelineJson(o.t) })), null, 2),
    );
    return 0;
  }
  for (const { replica, t } of out) {
    console.log(`replica ${replica}`);
    if (t.points.length === 0) {
      console.log("  nothing to restore (no snapshot)");
      continue;
    }
    const first = t.points[0];
    const last = t.points[t.points.length - 1];
    console.log(
      `  restorable from ${first.time.toISOString()} (TXID ${
        formatTXID(first.txid)
      }) to ${last.time.toISOString()} (TXID ${formatTXID(last.txid)}), ${t.points.length} points`,
    );
    const width = Math.max(...t.windows.map((w) => granularity(w.level).length));
    for (const w of [...t.windows].reverse()) {
      console.log(
        `  ${granularity(w.level).padEnd(width)}  ${
          String(w.points).padStart(6)
        }  ${w.from.toISOString()} .. ${w.to.toISOString()}`,
      );
    }
    for (const b of t.branches) {
      console.log(`  branch ${b.dest} at TXID ${formatTXID(b.txid)} (${b.time.toISOString()})`);
    }
    const byTxid = t.points.filter((p) => !p.byTimestamp).length;
    if (byTxid > 0) console.log(`  ${byTxid} points are reached by -txid only`);
  }
  return 0;
}

/** `strata verify`: restore a replica's latest state into a temporary file and check it. */

import { join, resolve } from "node:path";
import { formatTXID, parseLtxFileName } from "../ltx/mod.ts";
import { DURATION_LIMITS } from "../config/limits.ts";
import { defaultMetaPath, liveDatabaseChecksum } from "../capture/mod.ts";
import {
  type Expected,
  readLocalEnds,
  verifyReplica,
  type VerifyReport,
} from "../replicate/mod.ts";
import type { IntegrityCheck } from "../restore/mod.ts";
import { exists } from "../fsutil.ts";
import {
  BRANCH_SOURCE_FLAGS,
  CONFIG_FLAGS,
  durationFlag,
  parse,
  readConfig,
  replicasFor,
  wantsHelp,
} from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";
import { progressDisplay } from "./progress.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  ...BRANCH_SOURCE_FLAGS,
  json: { type: "bool", help: "print JSON" },
  "no-progress": { type: "bool", help: "do not show progress on stderr" },
  "max-lag": {
    type: "string",
    value: "DURATION",
    help:
      "with DB_PATH: fail a replica lacking changes captured locally longer ago than this (default 1m)",
  },
  "integrity-check": {
    type: "string",
    value: "none|quick|full",
    help: "check run on the restored database (default full)",
  },
};
const USAGE =
  `Usage: strata verify [-config PATH] [-json] [-no-progress] [-integrity-check MODE] DB_PATH|REPLICA_URL

Restores the latest state of each replica of DB_PATH (or of REPLICA_URL) into
a temporary file, verifying every file's checksums, the chain of checksums
from file to file and the restored database (integrity check), then compares
it with the live database at the same TXID: the live database itself when
strata's last captured position is that TXID and the database has not changed
since, else the checksum strata recorded locally for that TXID. With a
replica URL only the replica's own checksums are checked. With DB_PATH, a
replica that lacks transactions strata captured locally more than -max-lag
ago (default 1m) fails too: strata replicate is not getting them there (see
its log). Exits 1 when any check fails.`;

/** The source's checksum at a TXID: the live database, or the local files' record of it. */
function expectedFromSource(dbPath: string, metaPath: string) {
  return async (txid: bigint): Promise<Expected | null> => {
    const dir = join(metaPath, "ltx", "0");
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && parseLtxFileName(e.name)) names.push(e.name);
      }
    } catch { /* no local state */ }
    names.sort();
    let newest: { txid: bigint; post: bigint } | null = null;
    for (const n of [...names].reverse()) {
      try {
        const { header, post } = await readLocalEnds(join(dir, n));
        newest = { txid: header.maxTXID, post };
        break;
      } catch { /* being replaced: the one before */ }
    }
    if (!(await exists(dbPath))) return null; // only the replica's own checksums
    const live = liveDatabaseChecksum(dbPath);
    if (!newest) return { checksum: live.checksum, source: "live database" };
    if (newest.txid === txid && newest.post === live.checksum) {
      return { checksum: live.checksum, source: "live database" };
    }
    const at = names.map((n) => ({ n, r: parseLtxFileName(n)! })).find((x) => x.r.maxTXID === txid);
    if (!at) return null;
    const { post } = await readLocalEnds(join(dir, at.n));
    return { checksum: post, source: newest.txid === txid ? "local position" : "local history" };
  };
}

/**
 * Why a replica at `txid` is behind the local files by more than `maxLagMs`
 * (the oldest local file it lacks was captured that long ago), or null.
 */
async function lagProblem(
  metaPath: string,
  txid: bigint,
  maxLagMs: number,
): Promise<string | null> {
  const dir = join(metaPath, "ltx", "0");
  let oldest: { name: string; minTXID: bigint; maxTXID: bigint } | null = null;
  let newest = txid;
  try {
    for await (const e of Deno.readDir(dir)) {
      const r = e.isFile ? parseLtxFileName(e.name) : null;
      if (!r || r.maxTXID <= txid) continue;
      if (!oldest || r.minTXID < oldest.minTXID) oldest = { name: e.name, ...r };
      if (r.maxTXID > newest) newest = r.maxTXID;
    }
  } catch {
    return null; // no local state: nothing to compare with
  }
  if (!oldest) return null;
  let at: Date;
  try {
    at = new Date(Number((await readLocalEnds(join(dir, oldest.name))).header.timestamp));
  } catch {
    return null; // pruned or replaced meanwhile
  }
  const lag = Date.now() - at.getTime();
  if (lag <= maxLagMs) return null;
  return `the replica is behind: it lacks TXIDs ${formatTXID(txid + 1n)}-${
    formatTXID(newest)
  }, captured locally since ${at.toISOString()} (${
    Math.round(lag / 1000)
  } s ago, more than -max-lag): strata replicate is not getting them there (see its log)`;
}

export async function runVerify(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("give one DB_PATH or REPLICA_URL");
  const check = (flags.strings.get("integrity-check") ?? "full") as IntegrityCheck;
  if (!["none", "quick", "full"].includes(check)) {
    throw new UsageError(`-integrity-check must be none, quick or full`);
  }
  const maxLagMs = durationFlag(flags, "max-lag", DURATION_LIMITS["max-lag"]) ?? 60_000;
  const { clients, dbPath } = await replicasFor(flags.args[0], flags);
  let expectedAt: ((txid: bigint) => Promise<Expected | null>) | undefined;
  let metaPath: string | null = null;
  if (dbPath) {
    const cfg = await readConfig(flags, false);
    const db = cfg?.dbs.find((d) => resolve(d.path) === dbPath);
    metaPath = db?.metaPath ?? defaultMetaPath(dbPath);
    expectedAt = expectedFromSource(dbPath, metaPath);
  }
  const tmpDir = await Deno.makeTempDir({ prefix: "strata-verify-" });
  const reports: VerifyReport[] = [];
  try {
    for (const client of clients) {
      const display = flags.bools.has("no-progress")
        ? null
        : progressDisplay(`verify ${client.location}`);
      let report: VerifyReport | undefined;
      try {
        report = await verifyReplica(client, {
          tmpDir,
          integrityCheck: check,
          expectedAt,
          onProgress: display?.report,
        });
      } finally {
        display?.finish(report?.ok ?? false);
      }
      if (report.ok && metaPath !== null && report.txid !== null) {
        const behind = await lagProblem(metaPath, BigInt(`0x${report.txid}`), maxLagMs);
        if (behind !== null) {
          report.ok = false;
          report.error = behind;
        }
      }
      reports.push(report);
    }
  } finally {
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }
  if (flags.bools.has("json")) {
    console.log(JSON.stringify(reports, null, 2));
  } else {
    for (const r of reports) {
      if (r.ok) {
        console.log(
          `${r.replica}  OK  txid ${r.txid}  checksum ${r.checksum}  (compared with ${r.comparedWith})`,
        );
      } else {
        console.log(`${r.replica}  FAILED  ${r.error}`);
      }
    }
  }
  return reports.every((r) => r.ok) ? 0 : 1;
}

/** `strata clone`: a branch of a replica at a past point; `-delete` removes one. */

import { formatTXID } from "../ltx/mod.ts";
import { parseReplicaUrl } from "../config/replica_url.ts";
import type { RestoreTarget } from "../restore/mod.ts";
import { cloneReplica, deleteBranch, publicReplicaUrl } from "../branch/mod.ts";
import { clientFor, CONFIG_FLAGS, parse, readConfig, wantsHelp } from "./common.ts";
import { allowedBranchSource, withConfigSettings } from "./branch_source.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";
import { parseTimestampFlag, parseTXIDFlag } from "./target_flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  timestamp: {
    type: "string",
    value: "TIME",
    help: "branch from the latest state at or before this RFC 3339 time",
  },
  txid: {
    type: "string",
    value: "TXID",
    help: "branch from this TXID (16 hex digits, 0x… hex, or decimal up to 8 digits)",
  },
  delete: { type: "bool", help: "delete the branch DEST_REPLICA (its files and registration)" },
  source: {
    type: "string",
    value: "URL",
    help:
      "with -delete: the source replica's URL (needed when it is not on the branch's own store, or needs credentials the manifest omits)",
  },
  json: { type: "bool", help: "print the result as JSON" },
};
const USAGE = `Usage:
  strata clone [-config PATH] [-timestamp TIME | -txid TXID] SOURCE_REPLICA DEST_REPLICA
  strata clone -delete [-source SOURCE_REPLICA] DEST_REPLICA

Creates a branch: a new replica at DEST_REPLICA whose history starts at the
source's state at TIME or TXID (default: the latest). Nothing but a small
manifest is written (no page data is copied); "strata restore" of the branch
materialises the database, and "strata replicate" of that database into the
branch appends the branch's own files. The source keeps every file a live
branch points at until the branch is deleted.`;

export async function runClone(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  const json = flags.bools.has("json");
  if (flags.bools.has("delete")) {
    if (flags.args.length !== 1) throw new UsageError("-delete needs exactly one DEST_REPLICA");
    if (flags.strings.has("timestamp") || flags.strings.has("txid")) {
      throw new UsageError("-delete takes no -timestamp or -txid");
    }
    const override = flags.strings.get("source");
    const destConfig = parseReplicaUrl(flags.args[0]);
    const dest = clientFor(destConfig);
    const branch = { config: destConfig, location: dest.location };
    // -source names the source explicitly; else the manifest's, when on the branch's own store
    const { manifest, deleted } = await deleteBranch(
      dest,
      (url) =>
        clientFor(override ? parseReplicaUrl(override) : allowedBranchSource(branch, url, [])),
    );
    if (json) {
      console.log(
        JSON.stringify({ deleted: manifest.dest, source: manifest.source, files: deleted }),
      );
    } else {
      console.log(
        `deleted branch ${manifest.dest} of ${manifest.source} (${deleted} own files); ` +
          `the source's retention may now delete the ${manifest.files.length} files it pinned`,
      );
    }
    return 0;
  }
  if (flags.strings.has("source")) throw new UsageError("-source is for -delete only");
  if (flags.args.length !== 2) throw new UsageError("need SOURCE_REPLICA and DEST_REPLICA");
  const target: RestoreTarget = {};
  const ts = flags.strings.get("timestamp");
  if (ts !== undefined) target.timestamp = parseTimestampFlag(ts);
  const tx = flags.strings.get("txid");
  if (tx !== undefined) target.txid = parseTXIDFlag(tx);
  if (target.txid !== undefined && target.timestamp) {
    throw new UsageError("give -timestamp or -txid, not both");
  }
  const [src, dst] = flags.args;
  // with -config, a replica it lists is read and written with its settings (its age keys)
  const cfg = flags.strings.has("config") ? await readConfig(flags, true) : null;
  const configured = cfg ? [...cfg.dbs, ...cfg.dirs].flatMap((d) => d.replicas) : [];
  const source = withConfigSettings(src, configured);
  const destConfig = withConfigSettings(dst, configured);
  // a branch of an encrypted replica is encrypted with the same keys unless configured otherwise
  if (source.age && !destConfig.age) destConfig.age = source.age;
  const t0 = performance.now();
  const r = await cloneReplica({
    source: clientFor(source),
    sourceUrl: publicReplicaUrl(src),
    dest: clientFor(destConfig),
    destUrl: publicReplicaUrl(dst),
    target,
  });
  const ms = Math.round(performance.now() - t0);
  const m = r.manifest;
  const bytes = m.files.reduce((s, f) => s + f.size, 0);
  if (json) {
    console.log(JSON.stringify({
      branch: m.dest,
      source: m.source,
      id: formatTXID(m.id),
      txid: formatTXID(m.base.txid),
      time: m.base.time.toISOString(),
      files: m.files.length,
      bytes,
      uploaded: r.uploaded,
      ms,
    }));
  } else {
    console.log(
      `created branch ${m.dest} of ${m.source} at TXID ${formatTXID(m.base.txid)} ` +
        `(${m.base.time.toISOString()}): ${m.files.length} source files (${bytes} bytes) ` +
        `referenced, ${r.uploaded} bytes written, ${ms} ms`,
    );
    console.log(`restore it with: strata restore -o PATH ${m.dest}`);
  }
  return 0;
}

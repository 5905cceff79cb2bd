/** `strata status`: per database, the local position, each replica's position, and the lag. */

import { join, resolve } from "node:path";
import { formatChecksum, formatTXID, LtxDecoder, parseLtxFileName } from "../ltx/mod.ts";
import { defaultMetaPath } from "../capture/mod.ts";
import { listAllFiles, planRestore } from "../restore/mod.ts";
import type { ReplicaFile } from "../storage/mod.ts";
import { continuityProblem, findDatabases, readReplicaPosition } from "../replicate/mod.ts";
import { dirEntryConfig, globToRegExp } from "../config/mod.ts";
import {
  allowedSources,
  branchAwareClientFor,
  CONFIG_FLAGS,
  parse,
  readConfig,
  wantsHelp,
} from "./common.ts";
import { type FlagSpecs, type ParsedFlags, UsageError } from "./flags.ts";
import { controlRequest, type DbStatus } from "../server/mod.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  json: { type: "bool", help: "print JSON" },
  socket: {
    type: "string",
    value: "PATH",
    help: "ask the running strata replicate through its control socket instead",
  },
};
const USAGE = `Usage: strata status [-config PATH] [-json] [DB_PATH]
       strata status -socket PATH [-json] [DB_PATH]

For each configured database (or just DB_PATH): the position strata captured
locally (TXID, checksum, time), each replica's newest TXID and time, and how
far the replica is behind, and whether the replica diverged (its newest TXID
and checksum are not a point of the local history; strata stops uploading to
such a replica). With -socket, the running strata replicate answers from
memory: also each database's state, each replica's last sync and error.`;

interface LocalPosition {
  txid: bigint;
  checksum: bigint;
  at: Date;
  files: { minTXID: bigint; maxTXID: bigint; path: string }[];
}

/** The newest readable local L0 file's position (read only; nothing is changed). */
async function localPosition(metaPath: string): Promise<LocalPosition | null> {
  const dir = join(metaPath, "ltx", "0");
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && parseLtxFileName(e.name)) names.push(e.name);
    }
  } catch {
    return null;
  }
  const files = names.sort().map((n) => ({ ...parseLtxFileName(n)!, path: join(dir, n) }));
  for (const name of names.reverse()) {
    try {
      const file = await Deno.open(join(dir, name));
      const dec = new LtxDecoder(file.readable, { file: join(dir, name) });
      const h = await dec.readHeader();
      const t = await dec.verify();
      return {
        txid: h.maxTXID,
        checksum: t.postApplyChecksum,
        at: new Date(Number(h.timestamp)),
        files,
      };
    } catch { /* being replaced, or damaged: try the one before */ }
  }
  return null;
}

export async function runStatus(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  const socket = flags.strings.get("socket");
  if (socket) return await liveStatusCommand(socket, flags);
  const cfg = await readConfig(flags, true);
  let dbs = [...cfg!.dbs];
  // the databases under the config's directory entries (this process replicates none of them)
  for (const d of cfg!.dirs) {
    const dir = resolve(d.dir);
    const found = await findDatabases({
      dir,
      pattern: globToRegExp(d.pattern),
      recursive: d.recursive,
      skip: () => false,
    }).catch(() => []);
    dbs.push(...found.map((p) => dirEntryConfig({ ...d, dir }, p)));
  }
  if (flags.args.length > 1) throw new UsageError("give at most one DB_PATH");
  if (flags.args.length === 1) {
    const want = resolve(flags.args[0]);
    dbs = dbs.filter((d) => resolve(d.path) === want);
    if (dbs.length === 0) {
      throw new UsageError(`database ${flags.args[0]} is not in the config file`);
    }
  }
  const out = [];
  for (const db of dbs) {
    const path = resolve(db.path);
    const local = await localPosition(db.metaPath ?? defaultMetaPath(path));
    const replicas = [];
    for (const r of db.replicas) {
      const client = branchAwareClientFor(r, undefined, allowedSources(flags, cfg));
      try {
        const files = await listAllFiles(client);
        let newest = files[0] ?? null;
        for (const f of files) if (f.maxTXID > newest!.maxTXID) newest = f;
        // the replica first, then the local files again: a running replicate
        // writes locally before it uploads, so the replica is never seen ahead
        const pos = await readReplicaPosition(client, files);
        const now = await localPosition(db.metaPath ?? defaultMetaPath(path));
        const diverged = now
          ? await continuityProblem(
            pos,
            { txid: now.txid, postApplyChecksum: now.checksum },
            now.files,
          ).catch(() => null)
          : null;
        // files that cannot be restored (their base vanished) count for nothing
        const notRestorable = newest
          ? restoreProblem(files, newest.maxTXID, client.location)
          : null;
        const have = notRestorable !== null ? 0n : newest?.maxTXID ?? 0n;
        const behind = local ? local.txid - have : null;
        replicas.push({
          replica: `${client.type}:${client.location}`,
          txid: newest ? formatTXID(newest.maxTXID) : null,
          at: newest?.createdAt.toISOString() ?? null,
          files: files.length,
          behindTXIDs: behind === null ? null : Number(behind > 0n ? behind : 0n),
          lagSeconds: local && newest && behind! > 0n
            ? Math.max(0, (local.at.getTime() - newest.createdAt.getTime()) / 1000)
            : 0,
          notRestorable,
          checksum: newest ? formatChecksum(pos.postApplyChecksum) : null,
          diverged,
          error: null as string | null,
        });
      } catch (e) {
        replicas.push({
          replica: `${client.type}:${client.location}`,
          error: (e as Error).message,
        });
      }
    }
    out.push({
      db: path,
      local: local
        ? {
          txid: formatTXID(local.txid),
          checksum: formatChecksum(local.checksum),
          at: local.at.toISOString(),
        }
        : null,
      replicas,
    });
  }
  printStatus(out, flags.bools.has("json"));
  return 0;
}

/** Why the replica's files cannot restore TXID `txid`, or null. */
function restoreProblem(files: ReplicaFile[], txid: bigint, location: string): string | null {
  try {
    planRestore(files, { txid }, location);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

async function liveStatusCommand(socket: string, flags: ParsedFlags): Promise<number> {
  if (flags.args.length > 1) throw new UsageError("give at most one DB_PATH");
  const q = flags.args.length === 1 ? `?path=${encodeURIComponent(resolve(flags.args[0]))}` : "";
  const out = await controlRequest(socket, "GET", `/status${q}`) as DbStatus[];
  printStatus(out, flags.bools.has("json"));
  return 0;
}

interface PrintedStatus {
  db: string;
  state?: string;
  error?: string | null;
  local: { txid: string; checksum: string; at?: string } | null;
  replicas: {
    replica: string;
    txid?: string | null;
    at?: string | null;
    files?: number | null;
    behindTXIDs?: number | null;
    lagSeconds?: number;
    error?: string | null;
    diverged?: string | null;
    notRestorable?: string | null;
  }[];
}

function printStatus(out: PrintedStatus[], json: boolean): void {
  if (json) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  for (const d of out) {
    console.log(d.state ? `${d.db}  (${d.state}${d.error ? `: ${d.error}` : ""})` : d.db);
    console.log(
      d.local
        ? `  local    txid ${d.local.txid}  checksum ${d.local.checksum}${
          d.local.at ? `  at ${d.local.at}` : ""
        }`
        : d.state && d.state !== "replicating"
        ? `  not replicating (strata start ${d.db} resumes it)`
        : "  local    no position yet (strata has not captured this database)",
    );
    for (const r of d.replicas) {
      if (r.error) {
        console.log(`  ${r.replica}  error: ${r.error}`);
      } else if ("txid" in r && r.txid === null) {
        console.log(`  ${r.replica}  empty`);
      } else if ("txid" in r) {
        console.log(
          `  ${r.replica}  txid ${r.txid}  at ${r.at ?? "-"}  ${
            r.files ?? "?"
          } files  behind ${r.behindTXIDs} TXIDs (${(r.lagSeconds ?? 0).toFixed(1)} s)`,
        );
        if (r.diverged) console.log(`    DIVERGED: ${r.diverged}`);
        if (r.notRestorable) console.log(`    NOT RESTORABLE: ${r.notRestorable}`);
      }
    }
  }
}

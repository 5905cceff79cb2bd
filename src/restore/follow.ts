/**
 * Follow mode (`restore -f`): after a restore, keeps the copy up to date by
 * polling the replica and applying new LTX files as they arrive.
 *
 * Atomicity: each update copies the current file to `<out>.follow-tmp`,
 * applies the new files there (every file's checksums checked, so the result
 * is exactly the source database at the new TXID), fsyncs it and renames it
 * over `<out>`. A reader therefore sees either the old or the new state, never
 * a half-applied one: a connection opened before the rename keeps reading the
 * old file, connections opened after it read the new one. The cost is one
 * file copy per update (cheap where the filesystem clones or copies in the
 * kernel); in-place writes would need SQLite's locking and journal to hide
 * half-written pages from readers, and a crash mid-update would corrupt the copy.
 */

import * as fs from "node:fs";
import { dirname } from "node:path";
import { formatChecksum, formatTXID } from "../ltx/mod.ts";
import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";
import { exists, syncDir, writeFileAtomic } from "../fsutil.ts";
import { log } from "../log.ts";
import { PageApplier, ReplicaFileCheckError, RestoreError } from "./apply.ts";
import { checkRestoredSize } from "./db_size_check.ts";
import { checkAgainstWitness, findWitness } from "./witness.ts";
import type { RestoreCache } from "./cache.ts";
import { listAllFiles } from "./plan.ts";
import { evictCachedCopy } from "./verified_restore.ts";

export const DEFAULT_FOLLOW_INTERVAL_MS = 1000;

export interface FollowOptions {
  intervalMs?: number;
  /** Stops following (after the update under way, if any). */
  signal: AbortSignal;
  /** Called after each applied update. */
  onUpdate?: (state: PageApplier, files: number) => void;
  /**
   * The restore cache the client reads through, if any: files an update read
   * enter it once the update is verified, and are dropped when it fails.
   */
  cache?: RestoreCache | null;
}

/**
 * The files that take a database at `txid` furthest forward: at each step,
 * among the files covering the next TXID (starting at or before it and
 * ending after it: an L0 file, or a compacted file or snapshot that also
 * covers what is already applied), the one reaching furthest.
 */
export function planFollow(files: ReplicaFile[], txid: bigint): ReplicaFile[] {
  const chain: ReplicaFile[] = [];
  let pos = txid;
  while (true) {
    let next: ReplicaFile | null = null;
    for (const f of files) {
      if (f.minTXID > pos + 1n || f.maxTXID <= pos) continue;
      if (!next || better(f, next)) next = f;
    }
    if (!next) return chain;
    chain.push(next);
    pos = next.maxTXID;
  }
}

/**
 * Reaching further wins; then an increment over a snapshot (its pre-apply
 * checksum chains it to the copy, a snapshot's nothing does); then the smaller.
 */
function better(f: ReplicaFile, than: ReplicaFile): boolean {
  if (f.maxTXID !== than.maxTXID) return f.maxTXID > than.maxTXID;
  const fSnap = f.minTXID === 1n;
  if (fSnap !== (than.minTXID === 1n)) return !fSnap;
  return f.size < than.size;
}

/** What a follower records beside the copy (`<out>.follow.json`) so that it can resume. */
interface FollowRecord {
  replica: string;
  txid: string;
  checksum: string;
  pageSize: number;
}

export function followRecordPath(outPath: string): string {
  return `${outPath}.follow.json`;
}

/** Records the copy's position (after the copy itself is in place). */
export async function writeFollowRecord(
  outPath: string,
  location: string,
  state: PageApplier,
): Promise<void> {
  const record: FollowRecord = {
    replica: location,
    txid: formatTXID(state.txid),
    checksum: formatChecksum(state.sum.value),
    pageSize: state.pageSize,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(record) + "\n");
  await writeFileAtomic(followRecordPath(outPath), async (f) => {
    await f.write(bytes);
  });
}

/**
 * The state of a copy an earlier follower left, from its record: null when
 * there is no record; an error when the record is for another replica or the
 * copy's checksum is not the recorded one (changed since).
 */
export async function resumeFollowState(
  outPath: string,
  location: string,
): Promise<PageApplier | null> {
  const path = followRecordPath(outPath);
  if (!(await exists(path)) || !(await exists(outPath))) return null;
  let rec: FollowRecord;
  try {
    rec = JSON.parse(await Deno.readTextFile(path));
    if (!/^[0-9a-f]{16}$/.test(rec.txid) || !/^[0-9a-f]{16}$/.test(rec.checksum)) throw 0;
  } catch {
    throw new RestoreError(`${path} is not a follow record; pass -force to restore afresh`);
  }
  if (rec.replica !== location) {
    throw new RestoreError(
      `${outPath} follows ${rec.replica}, not ${location}; pass -force to restore afresh`,
    );
  }
  const fd = fs.openSync(outPath, "r");
  let state: PageApplier;
  try {
    state = PageApplier.fromFile(fd, rec.pageSize, BigInt("0x" + rec.txid));
  } catch (e) {
    throw new RestoreError(`${outPath} changed since it was followed: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
  if (formatChecksum(state.sum.value) !== rec.checksum) {
    throw new RestoreError(
      `${outPath} changed since it was followed (checksum ${
        formatChecksum(state.sum.value)
      }, recorded ${rec.checksum} at TXID ${rec.txid})`,
    );
  }
  return state;
}

/** Applies `chain` to a copy of `outPath` and renames it into place; returns the new state. */
export async function applyAtomically(
  client: ReplicaClient,
  outPath: string,
  state: PageApplier,
  chain: ReplicaFile[],
  listed: ReplicaFile[] = chain,
): Promise<PageApplier> {
  const tmp = `${outPath}.follow-tmp`;
  await Deno.remove(tmp).catch(() => {});
  await Deno.copyFile(outPath, tmp);
  const fd = fs.openSync(tmp, "r+");
  let closed = false;
  try {
    const next = state.fork(fd);
    for (const f of chain) await next.apply(client, f);
    const plan = { files: chain, txid: next.txid };
    const witness = findWitness(listed, plan);
    if (witness) await checkAgainstWitness(client, plan, next, witness);
    checkRestoredSize(fd, next.pageSize, `${outPath} (following ${client.location})`);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    closed = true;
    await Deno.rename(tmp, outPath);
    await syncDir(dirname(outPath));
    return next;
  } catch (e) {
    if (!closed) fs.closeSync(fd);
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Polls `client` every interval and applies what is new, until `signal` aborts. */
export async function followReplica(
  client: ReplicaClient,
  outPath: string,
  start: PageApplier,
  opts: FollowOptions,
): Promise<PageApplier> {
  const interval = opts.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS;
  let state = start;
  let behindWarned = false;
  /** Files that failed their checks: never planned again. */
  const skipped: ReplicaFile[] = [];
  log("info", "following replica", {
    replica: client.location,
    path: outPath,
    txid: formatTXID(state.txid),
    interval: `${interval}ms`,
  });
  while (true) {
    await sleep(interval, opts.signal);
    if (opts.signal.aborted) break;
    try {
      const files = (await listAllFiles(client)).filter((f) =>
        !skipped.some((s) =>
          s.level === f.level && s.minTXID === f.minTXID && s.maxTXID === f.maxTXID
        )
      );
      const chain = planFollow(files, state.txid);
      if (chain.length === 0) {
        const max = files.reduce((m, f) => (f.maxTXID > m ? f.maxTXID : m), 0n);
        if (files.length > 0 && max < state.txid && !behindWarned) {
          behindWarned = true;
          log("warn", "replica is behind the copy (was it reset?); waiting for newer files", {
            replica: client.location,
            replica_txid: formatTXID(max),
            txid: formatTXID(state.txid),
          });
        }
        continue;
      }
      behindWarned = false;
      const from = state.txid;
      try {
        state = await applyAtomically(client, outPath, state, chain, files);
      } catch (e) {
        const cached = e instanceof ReplicaFileCheckError && await evictCachedCopy(client, e.file);
        await opts.cache?.abort();
        if (cached) {
          log("warn", "follow: a cached replica file failed its checks; reading it again", {
            file: (e as ReplicaFileCheckError).label,
          });
          continue;
        }
        if (e instanceof ReplicaFileCheckError) {
          skipped.push(e.file);
          log("warn", "follow: replica file failed its checks; following without it", {
            file: e.label,
            reason: e.reason,
            txid: formatTXID(state.txid),
          });
          continue;
        }
        throw e;
      }
      await opts.cache?.commit();
      await writeFollowRecord(outPath, client.location, state);
      log("info", "follow: applied", {
        path: outPath,
        from_txid: formatTXID(from),
        txid: formatTXID(state.txid),
        files: chain.length,
      });
      opts.onUpdate?.(state, chain.length);
    } catch (e) {
      log("error", "follow: cannot apply updates; retrying", { error: e as Error });
    }
  }
  log("info", "follow mode stopped", { path: outPath, txid: formatTXID(state.txid) });
  return state;
}

/**
 * The restore planner: the newest snapshot at or before the target, then the
 * fewest files across levels that reach the target contiguously (each step
 * takes the file reaching furthest without overshooting).
 *
 * A next file may start at or before the position reached, as long as it
 * ends after it (Litestream v0.5's rule): a compacted file that spans the
 * snapshot's TXID continues it, since it holds the newest version of every
 * page changed in its range. Litestream keeps such files and lets the L0
 * files after its snapshot expire, so its replicas often hold no file that
 * starts right after the snapshot. Applying one gives the state at its end;
 * its post-apply checksum still verifies that state (its pre-apply checksum
 * is checked when the applier passed its start, see apply.ts).
 */

import { formatLtxFileName, formatTXID } from "../ltx/mod.ts";
import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";

export const ALL_LEVELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

export class RestorePlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestorePlanError";
  }
}

export interface RestoreTarget {
  txid?: bigint;
  timestamp?: Date;
}

export interface RestorePlan {
  files: ReplicaFile[];
  txid: bigint;
}

/** Lists every level's files. */
export async function listAllFiles(client: ReplicaClient): Promise<ReplicaFile[]> {
  const all: ReplicaFile[] = [];
  for (const level of ALL_LEVELS) all.push(...await client.listFiles(level));
  return all;
}

/** Picks the files to restore `target` (latest when empty). */
export function planRestore(
  files: ReplicaFile[],
  target: RestoreTarget,
  location: string,
): RestorePlan {
  if (files.length === 0) throw new RestorePlanError(`replica ${location} has no backup files`);
  let txid: bigint;
  if (target.txid !== undefined) {
    txid = target.txid;
  } else if (target.timestamp) {
    const t = target.timestamp.getTime();
    let best = 0n;
    for (const f of files) if (f.createdAt.getTime() <= t && f.maxTXID > best) best = f.maxTXID;
    if (best === 0n) {
      throw new RestorePlanError(
        `replica ${location} has nothing at or before ${target.timestamp.toISOString()}`,
      );
    }
    txid = best;
  } else {
    txid = files.reduce((m, f) => (f.maxTXID > m ? f.maxTXID : m), 0n);
  }
  const snapshots = files.filter((f) => f.minTXID === 1n && f.maxTXID <= txid);
  if (snapshots.length === 0) {
    throw new RestorePlanError(
      `replica ${location} has no snapshot at or before TXID ${formatTXID(txid)}`,
    );
  }
  // newest snapshot first; try older ones if the chain from a newer one has a gap
  snapshots.sort((
    a,
    b,
  ) => (a.maxTXID > b.maxTXID ? -1 : a.maxTXID < b.maxTXID ? 1 : b.level - a.level));
  let lastGap = "";
  for (const snap of snapshots) {
    const chain: ReplicaFile[] = [snap];
    let pos = snap.maxTXID;
    while (pos < txid) {
      let next: ReplicaFile | null = null;
      for (const f of files) if (continues(f, pos, txid) && better(f, next, pos)) next = f;
      if (!next) break;
      chain.push(next);
      pos = next.maxTXID;
    }
    if (pos === txid) return { files: chain, txid };
    lastGap = `no file holds TXID ${formatTXID(pos + 1n)} (after ${
      formatLtxFileName(chain[chain.length - 1].minTXID, chain[chain.length - 1].maxTXID)
    })`;
  }
  throw new RestorePlanError(
    `replica ${location} cannot reach TXID ${formatTXID(txid)}: ${lastGap}` +
      (target.txid !== undefined ? " (a TXID must be the end of some file)" : ""),
  );
}

/** Whether `f` takes a restore at `pos` further without passing `target`. */
function continues(f: ReplicaFile, pos: bigint, target: bigint): boolean {
  return f.minTXID <= pos + 1n && f.maxTXID > pos && f.maxTXID <= target;
}

/**
 * Whether `f` is a better next step than `than`: it reaches further; at the
 * same end, it starts right after `pos` (its pre-apply checksum can be
 * checked), then it is smaller.
 */
function better(f: ReplicaFile, than: ReplicaFile | null, pos: bigint): boolean {
  if (!than) return true;
  if (f.maxTXID !== than.maxTXID) return f.maxTXID > than.maxTXID;
  const exact = f.minTXID === pos + 1n;
  if (exact !== (than.minTXID === pos + 1n)) return exact;
  return f.size < than.size;
}

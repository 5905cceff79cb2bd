/**
 * The restore planner: the newest snapshot at or before the target, then the
 * fewest files across levels that reach the target contiguously (each step
 * takes the file reaching furthest without overshooting).
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
      for (const f of files) {
        if (f.minTXID !== pos + 1n || f.maxTXID > txid) continue;
        if (!next || f.maxTXID > next.maxTXID) next = f;
      }
      if (!next) break;
      chain.push(next);
      pos = next.maxTXID;
    }
    if (pos === txid) return { files: chain, txid };
    lastGap = `no file starts at TXID ${formatTXID(pos + 1n)} (after ${
      formatLtxFileName(chain[chain.length - 1].minTXID, chain[chain.length - 1].maxTXID)
    })`;
  }
  throw new RestorePlanError(
    `replica ${location} cannot reach TXID ${formatTXID(txid)}: ${lastGap}` +
      (target.txid !== undefined ? " (a TXID must be the end of some file)" : ""),
  );
}

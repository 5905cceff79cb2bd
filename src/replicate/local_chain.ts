/**
 * Which local L0 files continue a replica, whatever state the local
 * directory is in: files may overlap (a merged file beside some of its
 * inputs, left by a crash or by two merges at once) or leave a gap. The
 * chain takes, at each step, the file that starts right after the TXID
 * reached (or a full copy from TXID 1) and reaches farthest.
 */

import type { LocalFile } from "../capture/mod.ts";

export interface LocalChain {
  /** The files to upload after the replica's TXID, in order. */
  files: LocalFile[];
  /** The TXID the chain reaches. */
  reaches: bigint;
  /** The newest local TXID; above `reaches` when the chain stops at a gap. */
  newest: bigint;
}

/** The local files continuing TXID `pos` (see the module comment). */
export function chainAfter(local: LocalFile[], pos: bigint): LocalChain {
  const later = local.filter((f) => f.maxTXID > pos);
  let newest = pos;
  for (const f of later) if (f.maxTXID > newest) newest = f.maxTXID;
  const files: LocalFile[] = [];
  let at = pos;
  for (;;) {
    let next: LocalFile | null = null;
    for (const f of later) {
      if (f.maxTXID <= at || (f.minTXID !== at + 1n && f.minTXID !== 1n)) continue;
      if (!next || f.maxTXID > next.maxTXID) next = f;
    }
    if (!next) break;
    files.push(next);
    at = next.maxTXID;
  }
  return { files, reaches: at, newest };
}

/**
 * Local files made redundant by another that starts at the same TXID and
 * reaches farther (a merge's output beside its inputs): the longer one
 * holds every page they hold. Full copies from TXID 1 are left alone.
 */
export function redundantFiles(local: LocalFile[]): LocalFile[] {
  return local.filter((f) =>
    f.minTXID !== 1n &&
    local.some((g) => g !== f && g.minTXID === f.minTXID && g.maxTXID > f.maxTXID)
  );
}

/** Consecutive runs of files, a new run at each snapshot (min TXID 1). */
export function splitAtSnapshots(files: LocalFile[]): LocalFile[][] {
  const runs: LocalFile[][] = [];
  for (const f of files) {
    if (runs.length === 0 || f.minTXID === 1n) runs.push([f]);
    else runs[runs.length - 1].push(f);
  }
  return runs;
}

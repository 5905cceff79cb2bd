/**
 * Which moment a restore reached, and whether it is the one asked for.
 *
 * A point-in-time restore (`-timestamp T`) restores the newest state whose
 * file was in the replica at T: the state at the end of the last planned
 * file, as of that file's creation time. L0 files (one per upload) make the
 * steps as fine as the sync interval; once retention has removed them, the
 * next step after the restored state may be a compacted file spanning many
 * uploads (30 s for L1, 5 min for L2, …), created after T although some of
 * its transactions were committed before T. The restore then returns a state
 * older than asked, and says so.
 */

import type { ReplicaFile } from "../storage/mod.ts";
import type { RestoreTarget } from "./plan.ts";

/** The next restorable point after a state that is older than asked. */
export interface EarlierThanAsked {
  /** The finest file continuing the restored state: created after the time asked for. */
  next: ReplicaFile;
}

/**
 * For a `-timestamp` restore that reached `txid`: the finest file after it,
 * when that file is a compacted one (its finer files are gone, so the state
 * at the time asked may lie inside it); null when the restored state is as
 * fine as the replica was ever written, or the target was not a time.
 */
export function earlierThanAsked(
  files: ReplicaFile[],
  target: RestoreTarget,
  txid: bigint,
): EarlierThanAsked | null {
  if (!target.timestamp) return null;
  let next: ReplicaFile | null = null;
  for (const f of files) {
    if (f.minTXID > txid + 1n || f.maxTXID <= txid) continue;
    if (!next || f.maxTXID < next.maxTXID || (f.maxTXID === next.maxTXID && f.level < next.level)) {
      next = f;
    }
  }
  if (!next || next.level === 0) return null;
  return { next };
}

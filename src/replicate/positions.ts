/**
 * Positions of the local files and of a replica, and the check that a
 * replica continues the local history: the replica's position is (max TXID,
 * post-apply checksum of its newest file); local files may be uploaded only
 * when the local history passes through exactly that position.
 *
 * Listings carry no checksums, so the replica's checksum is read from the
 * newest file's trailer (a 16-byte ranged read) and then tracked by the
 * uploader.
 */

import { formatPosition, type LtxHeader, type Position, readLocalEnds } from "../ltx/mod.ts";
import type { LocalFile } from "../capture/mod.ts";
import { readReplicaPost, type ReplicaClient, type ReplicaFile } from "../storage/mod.ts";

export { readLocalEnds };

/** The file reaching the highest TXID (the lowest level's, the smallest read). */
export function newestFile(files: ReplicaFile[]): ReplicaFile | null {
  let best: ReplicaFile | null = null;
  for (const f of files) {
    if (
      !best || f.maxTXID > best.maxTXID || (f.maxTXID === best.maxTXID && f.level < best.level)
    ) best = f;
  }
  return best;
}

export { readReplicaPost };

/** The replica's position: its newest TXID and the checksum after it ({0, 0} when empty). */
export async function readReplicaPosition(
  client: ReplicaClient,
  files: ReplicaFile[],
): Promise<Position> {
  const f = newestFile(files);
  if (!f) return { txid: 0n, postApplyChecksum: 0n };
  return { txid: f.maxTXID, postApplyChecksum: await readReplicaPost(client, f) };
}

/**
 * Why the local history does not pass through the replica's position, or
 * null when it does (or cannot be told because the local files that would
 * show it were pruned: then the replica gets a snapshot, which depends on
 * nothing before it).
 */
export async function continuityProblem(
  replica: Position,
  local: Position,
  localFiles: LocalFile[],
  readEnds: (path: string) => Promise<{ header: LtxHeader; post: bigint }> = readLocalEnds,
): Promise<string | null> {
  if (replica.txid === 0n) return null;
  const r = formatPosition(replica);
  if (local.txid < replica.txid) {
    return `the replica (${r}) is ahead of the local position (${
      formatPosition(local)
    }): its history is not this database's`;
  }
  if (local.txid === replica.txid) {
    return local.postApplyChecksum === replica.postApplyChecksum
      ? null
      : `the replica (${r}) and the local position (${
        formatPosition(local)
      }) differ at the same TXID`;
  }
  const ending = localFiles.find((f) => f.maxTXID === replica.txid);
  if (ending) {
    const { post } = await readEnds(ending.path);
    if (post !== replica.postApplyChecksum) {
      return `the replica (${r}) differs from the local history at that TXID (${
        formatPosition({ txid: replica.txid, postApplyChecksum: post })
      })`;
    }
    return null;
  }
  const next = localFiles.find((f) => f.minTXID === replica.txid + 1n);
  if (next) {
    const { header } = await readEnds(next.path);
    if (header.preApplyChecksum !== replica.postApplyChecksum) {
      return `the replica (${r}) is not where the next local file starts (${
        formatPosition({ txid: replica.txid, postApplyChecksum: header.preApplyChecksum })
      })`;
    }
  }
  return null;
}

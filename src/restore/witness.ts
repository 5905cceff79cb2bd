/**
 * A snapshot that ends a restore has no later file whose pre-apply checksum
 * would show that it belongs to this replica's history (a snapshot of
 * another database copied in under a matching name restores that other
 * database). When another file of the replica ends at the same TXID, its
 * trailer's post-apply checksum (one ranged read of 16 bytes) must equal the
 * restored database's checksum.
 */

import { formatChecksum, TRAILER_SIZE } from "../ltx/mod.ts";
import {
  readReplicaPost,
  type ReplicaClient,
  type ReplicaFile,
  replicaFileLabel,
} from "../storage/mod.ts";
import { log } from "../log.ts";
import { type PageApplier, ReplicaFileCheckError } from "./apply.ts";
import type { RestorePlan } from "./plan.ts";

/** Another file ending where a snapshot-only plan ends. */
export interface Witness {
  file: ReplicaFile;
}

/** The witness for `plan` among `files` (the lowest level's), or null when none is needed or known. */
export function findWitness(files: ReplicaFile[], plan: RestorePlan): Witness | null {
  const last = plan.files[plan.files.length - 1];
  if (!last || last.minTXID !== 1n) return null;
  let best: ReplicaFile | null = null;
  for (const f of files) {
    if (f.maxTXID !== last.maxTXID || (f.level === last.level && f.minTXID === last.minTXID)) {
      continue;
    }
    if (f.size < TRAILER_SIZE) continue;
    if (!best || f.level < best.level) best = f;
  }
  return best ? { file: best } : null;
}

/** Throws `ReplicaFileCheckError` for the plan's snapshot when the witness disagrees with it. */
export async function checkAgainstWitness(
  client: ReplicaClient,
  plan: RestorePlan,
  applier: PageApplier,
  witness: Witness,
): Promise<void> {
  if (!applier.checksums) return;
  const w = witness.file;
  const wLabel = replicaFileLabel(client.location, w);
  let post: bigint;
  try {
    post = await readReplicaPost(client, w);
  } catch (e) {
    log("debug", "restore: witness file unreadable", { file: wLabel, error: e as Error });
    return; // gone meanwhile (retention): nothing to compare with
  }
  if (post === 0n || post === applier.sum.value) return;
  const last = plan.files[plan.files.length - 1];
  throw new ReplicaFileCheckError(
    last,
    replicaFileLabel(client.location, last),
    `its database checksum ${formatChecksum(applier.sum.value)} differs from the post-apply ` +
      `checksum ${formatChecksum(post)} of ${wLabel}, which ends at the same TXID ` +
      `(a snapshot of another database?)`,
    true,
  );
}

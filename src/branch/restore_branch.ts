/**
 * The restore a user runs (`strata restore`): through the local cache, and,
 * for a branch, leaving the position file that lets `strata replicate`
 * continue the branch from the restored point (see seed.ts).
 */

import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";
import type { ProgressFn } from "../progress.ts";
import {
  type IntegrityCheck,
  type OutputOptions,
  restoreCache,
  type RestoreResult,
  type RestoreTarget,
  restoreTargetCached,
} from "../restore/mod.ts";
import { BranchReplicaClient } from "./branch_client.ts";
import { writeSeedPosition } from "./seed.ts";

export async function restoreReplica(
  client: ReplicaClient,
  target: RestoreTarget,
  outPath: string,
  opts: {
    integrityCheck?: IntegrityCheck;
    files?: ReplicaFile[];
    onProgress?: ProgressFn;
  } & OutputOptions = {},
): Promise<RestoreResult> {
  const r = await restoreTargetCached(client, target, outPath, { ...opts, cache: restoreCache() });
  if (client instanceof BranchReplicaClient && await client.branch()) {
    await writeSeedPosition(outPath, {
      txid: r.txid,
      checksum: r.checksum,
      pageSize: r.pageSize,
      pages: r.pages,
    });
  }
  return r;
}

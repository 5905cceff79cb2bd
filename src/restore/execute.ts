/**
 * The restore executor: applies the planned files in order into a temporary
 * file, checking each file's checksums and the chain of pre/post-apply
 * checksums, verifies the final database checksum, then output.ts checks its
 * integrity and puts it in place. A failed restore leaves the output path as
 * it was.
 */

import { PageApplier } from "./apply.ts";
import { type ReplicaClient, type ReplicaFile, ReplicaFileNotFoundError } from "../storage/mod.ts";
import { ProgressCounter, type ProgressFn } from "../progress.ts";
import { listAllFiles, planRestore, type RestorePlan, type RestoreTarget } from "./plan.ts";
import { type IntegrityCheck, type OutputOptions, writeRestoredDatabase } from "./output.ts";

export interface RestoreResult {
  path: string;
  txid: bigint;
  /** When the restored state was in the replica: the creation time of the last file applied. */
  time: Date;
  checksum: bigint;
  pageSize: number;
  pages: number;
  files: number;
  /** The applier's final state (follow mode continues from it). */
  applier: PageApplier;
}

/** Writes the plan's database to `outPath` (which must not exist unless `opts.replace`). */
export async function executeRestore(
  client: ReplicaClient,
  plan: RestorePlan,
  outPath: string,
  opts: { integrityCheck?: IntegrityCheck; onProgress?: ProgressFn } & OutputOptions = {},
): Promise<RestoreResult> {
  const progress = opts.onProgress
    ? new ProgressCounter(plan.files.reduce((n, f) => n + f.size, 0), opts.onProgress)
    : null;
  return await writeRestoredDatabase(outPath, opts.integrityCheck ?? "quick", async (fd) => {
    const applier = new PageApplier(fd);
    for (const f of plan.files) await applier.apply(client, f, progress);
    return {
      path: outPath,
      txid: plan.txid,
      time: plan.files[plan.files.length - 1].createdAt,
      checksum: applier.checksums ? applier.sum.value : 0n,
      pageSize: applier.pageSize,
      pages: applier.commit,
      files: plan.files.length,
      applier,
    };
  }, opts);
}

/**
 * Plans and restores `target`; when a planned file disappears meanwhile
 * (retention ran between listing and reading), lists and plans once more.
 */
export async function restoreTarget(
  client: ReplicaClient,
  target: RestoreTarget,
  outPath: string,
  opts: {
    integrityCheck?: IntegrityCheck;
    files?: ReplicaFile[];
    onProgress?: ProgressFn;
  } & OutputOptions = {},
): Promise<RestoreResult> {
  const plan = planRestore(opts.files ?? await listAllFiles(client), target, client.location);
  try {
    return await executeRestore(client, plan, outPath, opts);
  } catch (e) {
    if (!(e instanceof ReplicaFileNotFoundError)) throw e;
    const again = planRestore(await listAllFiles(client), target, client.location);
    return await executeRestore(client, again, outPath, opts);
  }
}

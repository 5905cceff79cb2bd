/**
 * The restore executor: applies the planned files in order into a temporary
 * file, checking each file's checksums and the chain of pre/post-apply
 * checksums, verifies the final database checksum, then output.ts checks its
 * integrity and puts it in place. A failed restore leaves the output path as
 * it was.
 */

import { PageApplier } from "./apply.ts";
import { PagePool } from "../ltx/page_pool.ts";
import { log } from "../log.ts";
import { PrefetchingReplicaClient } from "./prefetch.ts";

/** Restores reading at least this many bytes decode their pages on worker threads. */
const POOL_MIN_BYTES = 4 << 20;

/** Bytes of planned files read ahead from a network replica (plus the one being applied). */
const PREFETCH_BYTES = 64 << 20;
import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";
import { ProgressCounter, type ProgressFn } from "../progress.ts";
import type { RestorePlan } from "./plan.ts";
import { checkAgainstWitness, type Witness } from "./witness.ts";
import { checkRestoredSize } from "./db_size_check.ts";
import { type IntegrityCheck, type OutputOptions, writeRestoredDatabase } from "./output.ts";

export interface RestoreResult {
  path: string;
  txid: bigint;
  /** When the restored state was in the replica: the creation time of the last file applied. */
  time: Date;
  /** The restored database's checksum, computed from its pages. */
  checksum: bigint;
  /**
   * Whether the replica verified that checksum: the last file applied
   * carried one and it matched (false for files without checksums, such as
   * Litestream v0.5 writes).
   */
  verified: boolean;
  pageSize: number;
  pages: number;
  files: number;
  /** The applier's final state (follow mode continues from it). */
  applier: PageApplier;
  /** Replica files that failed their checks and were left out (a restore on another path). */
  skipped: SkippedFile[];
}

/** A replica file a restore left out, and why. */
export interface SkippedFile {
  file: ReplicaFile;
  /** How messages name it: "LOCATION L<level>/<min>-<max>.ltx". */
  label: string;
  reason: string;
}

/** Writes the plan's database to `outPath` (which must not exist unless `opts.replace`). */
export async function executeRestore(
  client: ReplicaClient,
  plan: RestorePlan,
  outPath: string,
  opts: {
    integrityCheck?: IntegrityCheck;
    onProgress?: ProgressFn;
    /** Another file ending where a snapshot-only plan ends (see witness.ts). */
    witness?: Witness | null;
  } & OutputOptions = {},
): Promise<RestoreResult> {
  const progress = opts.onProgress
    ? new ProgressCounter(plan.files.reduce((n, f) => n + f.size, 0), opts.onProgress)
    : null;
  const bytes = plan.files.reduce((n, f) => n + f.size, 0);
  return await writeRestoredDatabase(outPath, opts.integrityCheck ?? "quick", async (fd) => {
    const applier = new PageApplier(fd);
    // workers pay off past a few MiB; below, starting them costs more than they save
    applier.pool = bytes >= POOL_MIN_BYTES ? new PagePool() : null;
    if (applier.pool) {
      log("debug", "restore: pages decoded on worker threads", { threads: applier.pool.threads });
    }
    // a network replica's next files download while one is applied (file replicas need not)
    const reader = client.type === "file"
      ? client
      : new PrefetchingReplicaClient(client, plan.files.slice(1), PREFETCH_BYTES);
    try {
      for (const f of plan.files) await applier.apply(reader, f, progress);
    } finally {
      applier.pool?.close();
      applier.pool = null;
    }
    if (opts.witness) await checkAgainstWitness(client, plan, applier, opts.witness);
    checkRestoredSize(fd, applier.pageSize, `${outPath} (restored from ${client.location})`);
    return {
      path: outPath,
      txid: plan.txid,
      time: plan.files[plan.files.length - 1].createdAt,
      checksum: applier.sum.value,
      verified: applier.checksums,
      pageSize: applier.pageSize,
      pages: applier.commit,
      files: plan.files.length,
      applier,
      skipped: [],
    };
  }, opts);
}

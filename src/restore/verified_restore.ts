/**
 * Restoring a target along a verified path: when a planned file fails its
 * checks (corrupt, truncated, renamed, foreign, not continuing the files
 * before it), the restore is planned again without it, to the same TXID:
 * an older snapshot and the increments after it, say. Each skipped file is
 * logged (WARN) with the reason and listed in the result; the restore fails,
 * naming every skipped file, only when no path of verified files reaches the
 * target. The target TXID is fixed by the first plan, so a bad file never
 * makes a restore silently return an earlier state.
 */

import { formatTXID } from "../ltx/mod.ts";
import {
  type ReplicaClient,
  type ReplicaFile,
  replicaFileLabel,
  ReplicaFileNotFoundError,
} from "../storage/mod.ts";
import { log } from "../log.ts";
import type { ProgressFn } from "../progress.ts";
import { ReplicaFileCheckError, RestoreError } from "./apply.ts";
import { executeRestore, type RestoreResult, type SkippedFile } from "./execute.ts";
import type { IntegrityCheck, OutputOptions } from "./output.ts";
import { listAllFiles, planRestore, RestorePlanError, type RestoreTarget } from "./plan.ts";
import { findWitness } from "./witness.ts";

const TXID_HINT = " (a TXID must be the end of some file)";

/** At most this many files are skipped before a restore gives up. */
const MAX_SKIPPED = 16;

/**
 * Drops the local cached copy of `f` when the running restore read one (it
 * failed a check: the replica's own copy is read next); false when it did not.
 */
export async function evictCachedCopy(client: ReplicaClient, f: ReplicaFile): Promise<boolean> {
  return await client.evictCached?.(f) ?? false;
}

function sameFile(a: ReplicaFile, b: ReplicaFile): boolean {
  return a.level === b.level && a.minTXID === b.minTXID && a.maxTXID === b.maxTXID;
}

function skippedList(skipped: SkippedFile[]): string {
  return skipped.map((s) => `${s.label} (${s.reason})`).join("; ");
}

/**
 * Plans and restores `target` (see the module comment); when a planned file
 * disappears meanwhile (retention ran between listing and reading), lists
 * once more.
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
  let files = opts.files ?? await listAllFiles(client);
  let relisted = false;
  const skipped: SkippedFile[] = [];
  const evicted: ReplicaFile[] = [];
  let txid: bigint | undefined;
  while (true) {
    const usable = files.filter((f) => !skipped.some((s) => sameFile(s.file, f)));
    let plan;
    try {
      plan = planRestore(usable, txid === undefined ? target : { txid }, client.location);
    } catch (e) {
      if (!(e instanceof RestorePlanError) || skipped.length === 0) throw e;
      if (usable.length === 0) {
        throw new RestorePlanError(
          `replica ${client.location}: every file it has failed its checks: ${
            skippedList(skipped)
          }`,
        );
      }
      // the TXID was pinned by the first plan, not asked for: no hint about -txid
      const why = target.txid === undefined ? e.message.replace(TXID_HINT, "") : e.message;
      throw new RestorePlanError(
        `${why}; no path of verified files reaches it: left out ${skippedList(skipped)}`,
      );
    }
    txid ??= plan.txid;
    try {
      const r = await executeRestore(client, plan, outPath, {
        ...opts,
        witness: findWitness(usable, plan),
      });
      r.skipped = skipped;
      return r;
    } catch (e) {
      if (e instanceof ReplicaFileNotFoundError && !relisted) {
        relisted = true;
        files = await listAllFiles(client);
        continue;
      }
      if (!(e instanceof ReplicaFileCheckError)) throw e;
      // a cached copy that fails: read the replica's own copy before blaming the file
      if (!evicted.some((f) => sameFile(f, e.file)) && await evictCachedCopy(client, e.file)) {
        evicted.push(e.file);
        log("warn", "restore: a cached replica file failed its checks; reading it again", {
          file: e.label,
          reason: e.reason,
        });
        continue;
      }
      const blamed = blame(client.location, plan.files, e);
      skipped.push(blamed);
      log("warn", "restore: replica file failed its checks; planning again without it", {
        file: blamed.label,
        reason: blamed.reason,
        txid: formatTXID(txid),
      });
      if (skipped.length >= MAX_SKIPPED) {
        throw new RestoreError(
          `cannot restore TXID ${formatTXID(txid)} from ${client.location}: ${skipped.length} ` +
            `files failed their checks: ${skippedList(skipped)}`,
        );
      }
    }
  }
}

/**
 * The file to leave out: the one that failed, except when it does not
 * continue a snapshot right before it. Increments are checked on both ends
 * (their pre-apply checksum, and the next file's), a snapshot by nothing
 * before it, so the snapshot is the likelier stranger.
 */
function blame(
  location: string,
  planned: ReplicaFile[],
  e: ReplicaFileCheckError,
): SkippedFile {
  const k = planned.findIndex((f) => sameFile(f, e.file));
  if (e.chain && k > 0 && planned[k - 1].minTXID === 1n) {
    const snap = planned[k - 1];
    return {
      file: snap,
      label: replicaFileLabel(location, snap),
      reason: `the next file, ${e.label}, does not continue it: ${e.reason}`,
    };
  }
  return { file: e.file, label: e.label, reason: e.reason };
}

/**
 * Verification of a replica: restore its latest state into a temporary file
 * (every file's checksums, the chain of pre/post-apply checksums, the final
 * database checksum and an integrity check are verified on the way), then
 * compare the restored checksum with what the source had at the same TXID
 * when that is known. Used by `strata verify` and by `validation-interval`.
 */

import { join } from "node:path";
import { formatChecksum, formatTXID } from "../ltx/mod.ts";
import type { ReplicaClient } from "../storage/mod.ts";
import { type IntegrityCheck, listAllFiles, restoreTarget } from "../restore/mod.ts";
import type { ProgressFn } from "../progress.ts";

/** What the source's checksum was at a TXID, and where that comes from. */
export interface Expected {
  checksum: bigint;
  /** "live database", "local position", "local history", … */
  source: string;
}

export interface VerifyReport {
  replica: string;
  ok: boolean;
  /** The replica's latest TXID (16 hex digits), when it could be restored. */
  txid: string | null;
  /** The restored database's checksum. */
  checksum: string | null;
  /** What the restore was compared with; "replica checksums" when nothing else was known. */
  comparedWith: string;
  expected: string | null;
  /** The reason when not ok: the file and the broken check, or both checksums. */
  error: string | null;
}

export interface VerifyOptions {
  /** Directory for the temporary restore (removed afterwards). */
  tmpDir: string;
  integrityCheck?: IntegrityCheck;
  /** The source's checksum at `txid`, or null when unknown. */
  expectedAt?: (txid: bigint) => Promise<Expected | null>;
  /** Bytes of replica files read so far, of the total. */
  onProgress?: ProgressFn;
}

export async function verifyReplica(
  client: ReplicaClient,
  opts: VerifyOptions,
): Promise<VerifyReport> {
  const report: VerifyReport = {
    replica: `${client.type}:${client.location}`,
    ok: false,
    txid: null,
    checksum: null,
    comparedWith: "replica checksums",
    expected: null,
    error: null,
  };
  const tmp = join(opts.tmpDir, `verify-${crypto.randomUUID().slice(0, 8)}.db`);
  try {
    const files = await listAllFiles(client);
    const r = await restoreTarget(client, {}, tmp, {
      integrityCheck: opts.integrityCheck ?? "quick",
      files,
      onProgress: opts.onProgress,
    });
    report.txid = formatTXID(r.txid);
    report.checksum = formatChecksum(r.checksum);
    if (!r.verified) {
      report.comparedWith =
        "nothing: the replica's files carry no checksums (computed from its pages)";
    }
    if (r.skipped.length > 0) {
      // restorable along another path, but the replica holds files that fail their checks
      report.error = `restored TXID ${formatTXID(r.txid)} only by leaving out ${
        r.skipped.map((s) => `${s.label} (${s.reason})`).join("; ")
      }`;
      return report;
    }
    const want = await opts.expectedAt?.(r.txid) ?? null;
    if (want) {
      report.comparedWith = `${want.source} at TXID ${formatTXID(r.txid)}`;
      report.expected = formatChecksum(want.checksum);
      if (want.checksum !== r.checksum) {
        report.error = `the replica's state at TXID ${formatTXID(r.txid)} (checksum ${
          formatChecksum(r.checksum)
        }) differs from the ${want.source} (checksum ${formatChecksum(want.checksum)})`;
        return report;
      }
    }
    report.ok = true;
    return report;
  } catch (e) {
    report.error = (e as Error).message;
    return report;
  } finally {
    for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`]) await Deno.remove(p).catch(() => {});
  }
}

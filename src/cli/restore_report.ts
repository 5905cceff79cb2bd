/**
 * What `strata restore` says about a restore it made or skipped: one line of
 * text, or one JSON object with `-json`; a warning on stderr when the state
 * restored may be older than the time asked for (see restore/point.ts).
 */

import { formatChecksum, formatLtxFileName, formatTXID } from "../ltx/mod.ts";
import { basename } from "node:path";
import type {
  EarlierThanAsked,
  RestorePlan,
  RestoreResult,
  RestoreTarget,
} from "../restore/mod.ts";
import { log } from "../log.ts";

export interface RestoreReport {
  path: string;
  replica: string;
  /** 16 hex digits. */
  txid: string;
  /** When that state was in the replica (RFC 3339). */
  time: string;
  /** The restored database's checksum (computed from its pages when the replica had none). */
  checksum: string;
  /**
   * False when the replica's files carry no checksums (Litestream v0.5 writes
   * them so): each file's own CRC was checked, the database's checksum was
   * computed but there was nothing to compare it with.
   */
  checksumVerified: boolean;
  pageSize: number;
  pages: number;
  files: number;
  requested: { timestamp: string | null; txid: string | null };
  /** The state may be older than `requested.timestamp`: the finer files after it are gone. */
  earlierThanAsked: boolean;
  /** With `earlierThanAsked`: the next restorable point, after the time asked for. */
  next: { txid: string; time: string; level: number; file: string } | null;
  /** Replica files that failed their checks and were left out (the restore took another path). */
  skipped: { file: string; reason: string }[];
  /** Litestream's `restore -json` fields (the output path, the time taken, the check run). */
  db_path?: string;
  duration_ms?: number;
  integrity_check?: string;
}

export function restoreReport(
  r: RestoreResult,
  replica: string,
  target: RestoreTarget,
  earlier: EarlierThanAsked | null,
): RestoreReport {
  const n = earlier?.next;
  return {
    path: r.path,
    replica,
    txid: formatTXID(r.txid),
    time: r.time.toISOString(),
    checksum: formatChecksum(r.checksum),
    checksumVerified: r.verified,
    pageSize: r.pageSize,
    pages: r.pages,
    files: r.files,
    requested: {
      timestamp: target.timestamp?.toISOString() ?? null,
      txid: target.txid !== undefined ? formatTXID(target.txid) : null,
    },
    earlierThanAsked: earlier !== null,
    next: n
      ? {
        txid: formatTXID(n.maxTXID),
        time: n.createdAt.toISOString(),
        level: n.level,
        file: formatLtxFileName(n.minTXID, n.maxTXID),
      }
      : null,
    skipped: r.skipped.map((f) => ({ file: f.label, reason: f.reason })),
  };
}

/** Prints the report (text or JSON) and, when the state may be older than asked, warns. */
export function printRestored(report: RestoreReport, json: boolean): void {
  if (report.earlierThanAsked && report.next) {
    const n = report.next;
    log(
      "warn",
      `the restored state (TXID ${report.txid} as of ${report.time}) may be older than ${report.requested.timestamp} asked for: the replica's finer files after it were removed by retention; its next restorable point is TXID ${n.txid} as of ${n.time} (level ${n.level} file ${n.file})`,
      { path: report.path, replica: report.replica },
    );
  }
  if (json) {
    console.log(JSON.stringify(report));
    return;
  }
  const sum = report.checksumVerified
    ? `checksum ${report.checksum}`
    : `checksum ${report.checksum}, computed: the replica's files carry no checksums to verify it against (as Litestream writes them), only each file's own CRC was checked`;
  console.log(
    `restored ${report.path} to TXID ${report.txid} as of ${report.time} (${report.pages} pages of ${report.pageSize} bytes, ${report.files} files, ${sum})`,
  );
}

/** A restore that did nothing (`-if-db-not-exists`, `-if-replica-exists`). */
export function printSkipped(path: string, reason: string, json: boolean): void {
  if (json) console.log(JSON.stringify({ path, skipped: true, reason }));
  else console.log(reason);
}

/** `-dry-run`: the files a restore would read. */
export function printPlan(out: string, replica: string, plan: RestorePlan, json: boolean): void {
  const total = plan.files.reduce((n, f) => n + f.size, 0);
  if (json) {
    console.log(JSON.stringify({
      path: out,
      replica,
      dryRun: true,
      txid: formatTXID(plan.txid),
      time: plan.files[plan.files.length - 1].createdAt.toISOString(),
      bytes: total,
      files: plan.files.map((f) => ({
        level: f.level,
        minTXID: formatTXID(f.minTXID),
        maxTXID: formatTXID(f.maxTXID),
        size: f.size,
        createdAt: f.createdAt.toISOString(),
      })),
    }));
    return;
  }
  console.log(`restore of ${basename(out)} to TXID ${formatTXID(plan.txid)} from ${replica}:`);
  for (const f of plan.files) {
    console.log(
      `  level ${f.level}  ${formatTXID(f.minTXID)}-${
        formatTXID(f.maxTXID)
      }  ${f.size} bytes  ${f.createdAt.toISOString()}`,
    );
  }
  console.log(`${plan.files.length} files, ${total} bytes`);
}

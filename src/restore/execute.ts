/**
 * The restore executor: applies the planned files in order into `<out>.tmp`,
 * checking each file's checksums and the chain of pre/post-apply checksums,
 * verifies the final database checksum, runs an integrity check, fsyncs and
 * renames. A failed restore leaves nothing at the output path.
 */

import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { PageApplier, RestoreError } from "./apply.ts";
import { type ReplicaClient, type ReplicaFile, ReplicaFileNotFoundError } from "../storage/mod.ts";
import { syncDir } from "../fsutil.ts";
import { ProgressCounter, type ProgressFn } from "../progress.ts";
import { listAllFiles, planRestore, type RestorePlan, type RestoreTarget } from "./plan.ts";

export type IntegrityCheck = "none" | "quick" | "full";

export interface RestoreResult {
  path: string;
  txid: bigint;
  checksum: bigint;
  pageSize: number;
  pages: number;
  files: number;
  /** The applier's final state (follow mode continues from it). */
  applier: PageApplier;
}

/** Writes the plan's database to `outPath` (which must not exist unless `force`). */
export async function executeRestore(
  client: ReplicaClient,
  plan: RestorePlan,
  outPath: string,
  opts: { integrityCheck?: IntegrityCheck; onProgress?: ProgressFn } = {},
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
      checksum: applier.checksums ? applier.sum.value : 0n,
      pageSize: applier.pageSize,
      pages: applier.commit,
      files: plan.files.length,
      applier,
    };
  });
}

/**
 * Writes a restored database: `fill` writes it into a fresh `<out>.tmp`
 * (open at `fd`); then fsync, the integrity check, rename over `outPath` and
 * a directory fsync. On any failure nothing is left at either path.
 */
export async function writeRestoredDatabase<T>(
  outPath: string,
  check: IntegrityCheck,
  fill: (fd: number) => Promise<T>,
): Promise<T> {
  const tmp = `${outPath}.tmp`;
  await Deno.mkdir(dirname(outPath), { recursive: true });
  for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) {
    await Deno.remove(p).catch(() => {});
  }
  const fd = fs.openSync(tmp, "wx+");
  let ok = false;
  try {
    const result = await fill(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    await integrityCheck(tmp, check);
    await Deno.rename(tmp, outPath);
    await syncDir(dirname(outPath));
    ok = true;
    return result;
  } finally {
    if (!ok) {
      try {
        fs.closeSync(fd);
      } catch { /* closed */ }
      for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`]) await Deno.remove(p).catch(() => {});
    }
  }
}

/** Runs the integrity check on a closed database file and leaves it without -wal/-shm. */
export async function integrityCheck(path: string, mode: IntegrityCheck): Promise<void> {
  if (mode === "none") return;
  const db = new DatabaseSync(path);
  try {
    const pragma = mode === "full" ? "integrity_check" : "quick_check";
    const rows = db.prepare(`PRAGMA ${pragma}`).all() as Record<string, string>[];
    const results = rows.map((r) => Object.values(r)[0]);
    if (results.length !== 1 || results[0] !== "ok") {
      throw new RestoreError(
        `restored database fails ${pragma}: ${results.slice(0, 5).join("; ")}`,
      );
    }
    // leave the file as a plain database file: no -wal/-shm behind
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
  await Deno.remove(`${path}-wal`).catch(() => {});
  await Deno.remove(`${path}-shm`).catch(() => {});
}

/**
 * Plans and restores `target`; when a planned file disappears meanwhile
 * (retention ran between listing and reading), lists and plans once more.
 */
export async function restoreTarget(
  client: ReplicaClient,
  target: RestoreTarget,
  outPath: string,
  opts: { integrityCheck?: IntegrityCheck; files?: ReplicaFile[]; onProgress?: ProgressFn } = {},
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

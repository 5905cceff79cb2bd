/**
 * The restore executor: applies the planned files in order into `<out>.tmp`,
 * checking each file's checksums and the chain of pre/post-apply checksums,
 * verifies the final database checksum, runs an integrity check, fsyncs and
 * renames. A failed restore leaves nothing at the output path.
 */

import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import {
  DatabaseChecksum,
  formatChecksum,
  formatLtxFileName,
  hasChecksums,
  isSnapshot,
  LtxDecoder,
  LtxFormatError,
  pageChecksumFromCrc,
} from "../ltx/mod.ts";
import { type ReplicaClient, type ReplicaFile, ReplicaFileNotFoundError } from "../storage/mod.ts";
import { syncDir } from "../fsutil.ts";
import { listAllFiles, planRestore, type RestorePlan, type RestoreTarget } from "./plan.ts";

export type IntegrityCheck = "none" | "quick" | "full";

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreError";
  }
}

export interface RestoreResult {
  path: string;
  txid: bigint;
  checksum: bigint;
  pageSize: number;
  pages: number;
  files: number;
}

/** Writes the plan's database to `outPath` (which must not exist unless `force`). */
export async function executeRestore(
  client: ReplicaClient,
  plan: RestorePlan,
  outPath: string,
  opts: { integrityCheck?: IntegrityCheck } = {},
): Promise<RestoreResult> {
  const tmp = `${outPath}.tmp`;
  await Deno.mkdir(dirname(outPath), { recursive: true });
  for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) {
    await Deno.remove(p).catch(() => {});
  }
  const fd = fs.openSync(tmp, "wx+");
  let ok = false;
  try {
    const sum = new DatabaseChecksum();
    let pcHi = new Uint32Array(1024);
    let pcLo = new Uint32Array(1024);
    let commit = 0;
    let pageSize = 0;
    let lastPost = 0n;
    let checksums = true;
    const pc = { hi: 0, lo: 0 };
    for (const f of plan.files) {
      const name = `${client.location}/ltx/${f.level}/${formatLtxFileName(f.minTXID, f.maxTXID)}`;
      const dec = new LtxDecoder(await client.openFile(f.level, f.minTXID, f.maxTXID), {
        file: name,
      });
      const h = await dec.readHeader();
      if (pageSize === 0) pageSize = h.pageSize;
      if (h.pageSize !== pageSize) {
        throw new LtxFormatError(name, `page size ${h.pageSize} differs from ${pageSize}`);
      }
      if (!hasChecksums(h)) checksums = false;
      if (!isSnapshot(h) && hasChecksums(h) && checksums && h.preApplyChecksum !== sum.value) {
        throw new RestoreError(
          `${name}: pre-apply checksum ${
            formatChecksum(h.preApplyChecksum)
          } does not match the restored database ${
            formatChecksum(sum.value)
          } (the replica's history is broken here)`,
        );
      }
      if (h.commit >= pcHi.length) {
        const n = Math.max(h.commit + 1, pcHi.length * 2);
        const hi = new Uint32Array(n);
        const lo = new Uint32Array(n);
        hi.set(pcHi);
        lo.set(pcLo);
        pcHi = hi;
        pcLo = lo;
      }
      for (let p = await dec.nextPage(); p; p = await dec.nextPage()) {
        fs.writeSync(fd, p.data, 0, p.data.length, (p.pgno - 1) * pageSize);
        pageChecksumFromCrc(p.pgno, p.crc, pageSize, pc);
        sum.xor({ hi: pcHi[p.pgno], lo: pcLo[p.pgno] });
        sum.xor(pc);
        pcHi[p.pgno] = pc.hi;
        pcLo[p.pgno] = pc.lo;
      }
      // pages above the new commit are gone
      for (let p = h.commit + 1; p <= commit; p++) {
        sum.xor({ hi: pcHi[p], lo: pcLo[p] });
        pcHi[p] = 0;
        pcLo[p] = 0;
      }
      commit = h.commit;
      fs.ftruncateSync(fd, commit * pageSize);
      lastPost = dec.trailer!.postApplyChecksum;
      if (checksums && lastPost !== sum.value) {
        throw new RestoreError(
          `${name}: post-apply checksum ${
            formatChecksum(lastPost)
          } does not match the restored database ${formatChecksum(sum.value)}`,
        );
      }
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    await integrityCheck(tmp, opts.integrityCheck ?? "quick");
    await Deno.rename(tmp, outPath);
    await syncDir(dirname(outPath));
    ok = true;
    return {
      path: outPath,
      txid: plan.txid,
      checksum: checksums ? sum.value : 0n,
      pageSize,
      pages: commit,
      files: plan.files.length,
    };
  } finally {
    if (!ok) {
      try {
        fs.closeSync(fd);
      } catch { /* closed */ }
      for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`]) await Deno.remove(p).catch(() => {});
    }
  }
}

async function integrityCheck(path: string, mode: IntegrityCheck): Promise<void> {
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
  opts: { integrityCheck?: IntegrityCheck; files?: ReplicaFile[] } = {},
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

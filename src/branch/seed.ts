/**
 * After a branch is restored to a database path, `strata replicate` of that
 * database into the branch must continue the branch's TXIDs from the
 * restored point, not start a new history at TXID 1 with a full copy. The
 * monitor's persisted position is the newest L0 file in the database's meta
 * directory, so the restore leaves one there: an LTX file at the restored
 * TXID carrying page 1 unchanged, whose pre- and post-apply checksums are
 * the restored database's checksum. The monitor resumes from it when the
 * database still has that checksum, and captures a full copy otherwise.
 */

import { join } from "node:path";
import { defaultMetaPath } from "../capture/mod.ts";
import { formatLtxFileName, LtxEncoder, makeHeader, writerSink } from "../ltx/mod.ts";
import { writeFileAtomic } from "../fsutil.ts";

export interface SeedPosition {
  txid: bigint;
  checksum: bigint;
  pageSize: number;
  pages: number;
}

/** Writes the position file for `dbPath` (replacing older local L0 files); returns its path. */
export async function writeSeedPosition(
  dbPath: string,
  pos: SeedPosition,
  opts: { metaPath?: string; clock?: () => number } = {},
): Promise<string | null> {
  // TXID 1 is a full copy: the monitor's own first file is the same position
  if (pos.txid <= 1n || pos.checksum === 0n || pos.pages < 1) return null;
  const dir = join(opts.metaPath ?? defaultMetaPath(dbPath), "ltx", "0");
  await Deno.mkdir(dir, { recursive: true });
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".ltx")) await Deno.remove(join(dir, e.name));
  }
  const page = new Uint8Array(pos.pageSize);
  const db = await Deno.open(dbPath);
  try {
    let n = 0;
    while (n < page.length) {
      const r = await db.read(page.subarray(n));
      if (r === null) break;
      n += r;
    }
  } finally {
    db.close();
  }
  const path = join(dir, formatLtxFileName(pos.txid, pos.txid));
  const header = makeHeader({
    pageSize: pos.pageSize,
    commit: pos.pages,
    minTXID: pos.txid,
    maxTXID: pos.txid,
    timestamp: BigInt((opts.clock ?? Date.now)()),
    preApplyChecksum: pos.checksum,
  });
  await writeFileAtomic(path, async (file) => {
    const enc = new LtxEncoder(writerSink(file), header, { file: path });
    await enc.writePage(1, page);
    await enc.finish(pos.checksum);
  });
  return path;
}

/**
 * Checks a replica's level-0 history file by file: every file decodes with
 * valid checksums, TXIDs follow without a gap from the first snapshot on,
 * and each file's pre-apply checksum is its predecessor's post-apply
 * checksum (a full copy starting at TXID 1 begins a new chain).
 */

import { formatChecksum, formatTXID, LtxDecoder } from "../../src/ltx/mod.ts";
import type { ReplicaClient } from "../../src/storage/mod.ts";

export interface ChainReport {
  files: number;
  maxTXID: bigint;
}

export async function checkL0Chain(client: ReplicaClient): Promise<ChainReport> {
  const files = await client.listFiles(0);
  let prev: { max: bigint; post: bigint } | null = null;
  for (const f of files) {
    const name = `L0/${formatTXID(f.minTXID)}-${formatTXID(f.maxTXID)}`;
    const dec = new LtxDecoder(await client.openFile(0, f.minTXID, f.maxTXID), { file: name });
    const h = await dec.readHeader();
    const t = await dec.verify(); // every page and the file checksum
    if (prev !== null && h.minTXID !== 1n) {
      if (h.minTXID !== prev.max + 1n) {
        throw new Error(`${name}: TXID gap after ${formatTXID(prev.max)}`);
      }
      if (h.preApplyChecksum !== prev.post) {
        throw new Error(
          `${name}: pre-apply ${formatChecksum(h.preApplyChecksum)} != previous post-apply ${
            formatChecksum(prev.post)
          }`,
        );
      }
    }
    prev = { max: h.maxTXID, post: t.postApplyChecksum };
  }
  return { files: files.length, maxTXID: prev?.max ?? 0n };
}

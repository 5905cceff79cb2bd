/** A made-up history of LTX files for merge tests. */

import { encodeLtx } from "../../src/ltx/encoder.ts";
import { makeHeader } from "../../src/ltx/header.ts";
import { applyToModel, modelChecksum, rng, textPage } from "./pages.ts";

/** A history of files: snapshot then incrementals with random commits (shrinks and grows). */
export async function history(seed: number, pageSize: number, count: number) {
  const r = rng(seed);
  const model = new Map<number, Uint8Array>();
  const files: Uint8Array[] = [];
  const states: { model: Map<number, Uint8Array>; commit: number; checksum: bigint }[] = [];
  let commit = 8;
  let prevSum = 0n;
  for (let i = 0; i < count; i++) {
    const txid = BigInt(i + 1);
    const pages = [];
    if (i === 0) {
      for (let p = 1; p <= commit; p++) pages.push({ pgno: p, data: textPage(pageSize, seed + p) });
    } else {
      const oldCommit = commit;
      // shrink sometimes, grow sometimes
      const roll = r();
      commit = roll < 0.25
        ? Math.max(1, commit - 1 - Math.floor(r() * 5))
        : roll < 0.6
        ? commit + Math.floor(r() * 6)
        : commit;
      for (let p = 1; p <= commit; p++) {
        if (p > oldCommit || r() < 0.25) {
          pages.push({ pgno: p, data: textPage(pageSize, seed * 1000 + i * 50 + p) });
        }
      }
    }
    const header = makeHeader({
      pageSize,
      commit,
      minTXID: txid,
      maxTXID: txid,
      timestamp: BigInt(1000 * (i + 1)),
      preApplyChecksum: i === 0 ? 0n : prevSum,
    });
    // grown pages never written count as zeros in the model: always write them (done above)
    applyToModel(model, header, pages);
    const sum = modelChecksum(model, commit, pageSize);
    files.push(await encodeLtx(header, pages, i === 0 ? undefined : sum));
    states.push({ model: new Map(model), commit, checksum: sum });
    prevSum = sum;
  }
  return { files, states };
}

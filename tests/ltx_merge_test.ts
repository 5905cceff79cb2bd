import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { decodeLtx } from "../src/ltx/decoder.ts";
import { encodeLtx } from "../src/ltx/encoder.ts";
import { makeHeader } from "../src/ltx/header.ts";
import { MemorySink } from "../src/ltx/io.ts";
import { LtxMergeError, mergeLtx } from "../src/ltx/merge.ts";
import { LtxFormatError, LtxNameMismatchError } from "../src/ltx/errors.ts";
import { readVector } from "./helpers/vectors.ts";
import { applyToModel, modelChecksum, pagesOf, rng } from "./helpers/pages.ts";
import { history } from "./helpers/history.ts";

async function merge(files: Uint8Array[]): Promise<Uint8Array> {
  const sink = new MemorySink();
  await mergeLtx(files.map((f, i) => ({ name: `in${i}`, source: [f] })), sink);
  return sink.bytes();
}

Deno.test("merging vectors a + b gives the content of e_compact_a_b", async () => {
  const a = await readVector("ltx", "a_snapshot.ltx");
  const b = await readVector("ltx", "b_incr.ltx");
  const merged = await decodeLtx(await merge([a, b]));
  const e = await decodeLtx(await readVector("ltx", "e_compact_a_b.ltx"));
  assertEquals(pagesOf(merged.pages), pagesOf(e.pages));
  assertEquals(merged.trailer.postApplyChecksum, e.trailer.postApplyChecksum);
  assertEquals([merged.header.minTXID, merged.header.maxTXID, merged.header.commit], [1n, 2n, 4]);
});

Deno.test("merge equals applying the files one by one, including shrink-then-grow", async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const { files, states } = await history(seed, 512, 24);
    const r = rng(seed + 100);
    for (let t = 0; t < 12; t++) {
      const from = Math.floor(r() * files.length);
      const to = from + Math.floor(r() * (files.length - from));
      const merged = await decodeLtx(await merge(files.slice(from, to + 1)));
      // apply the merged file on top of the state before `from`
      const model = from === 0 ? new Map<number, Uint8Array>() : new Map(states[from - 1].model);
      applyToModel(model, merged.header, merged.pages);
      const want = states[to];
      assertEquals(merged.header.commit, want.commit);
      assertEquals(
        [...model.entries()].sort((a, b) => a[0] - b[0]),
        [...want.model.entries()].sort((a, b) => a[0] - b[0]),
      );
      assertEquals(merged.trailer.postApplyChecksum, want.checksum);
      assertEquals(modelChecksum(model, want.commit, 512), want.checksum);
    }
  }
});

Deno.test("merge drops a page from before a shrink that a later file grew past", async () => {
  const ps = 512;
  const s1 = makeHeader({ pageSize: ps, commit: 3, minTXID: 1n, maxTXID: 1n });
  const p = (n: number, b: number) => ({ pgno: n, data: new Uint8Array(ps).fill(b) });
  const f1 = await encodeLtx(s1, [p(1, 1), p(2, 2), p(3, 3)]);
  const m = new Map<number, Uint8Array>();
  applyToModel(m, s1, [p(1, 1), p(2, 2), p(3, 3)]);
  const h2 = makeHeader({
    pageSize: ps,
    commit: 1,
    minTXID: 2n,
    maxTXID: 2n,
    preApplyChecksum: modelChecksum(m, 3, ps),
  });
  applyToModel(m, h2, []);
  const f2 = await encodeLtx(h2, [], modelChecksum(m, 1, ps));
  const h3 = makeHeader({
    pageSize: ps,
    commit: 3,
    minTXID: 3n,
    maxTXID: 3n,
    preApplyChecksum: modelChecksum(m, 1, ps),
  });
  applyToModel(m, h3, [p(2, 9)]);
  const f3 = await encodeLtx(h3, [p(2, 9)], modelChecksum(m, 3, ps));
  const merged = await decodeLtx(await merge([f2, f3]));
  // page 3 must not survive from before the shrink: it was never rewritten
  assertEquals(merged.pages.map((x) => x.pgno), [2]);
  // merged from the snapshot, page 3 has no valid version left: the snapshot would be
  // incomplete, and the encoder refuses to write it rather than resurrect stale bytes
  await assertRejects(() => merge([f1, f2, f3]), Error, "snapshot has pages up to 2, commit is 3");
});

Deno.test("merge refuses gaps, broken checksum chains and corrupt inputs", async () => {
  const { files } = await history(9, 512, 5);
  await assertRejects(() => merge([files[0], files[2]]), LtxMergeError, "does not continue");
  await assertRejects(() => merge([files[1], files[0]]), LtxMergeError);
  const other = await history(10, 512, 5);
  await assertRejects(
    () => merge([files[1], other.files[2]]),
    LtxFormatError,
    "pre-apply checksum",
  );
  const bad = files[3].slice();
  bad[bad.length - 1] ^= 1;
  await assertRejects(() => merge([files[2], bad]), LtxFormatError, "checksum");
});

Deno.test("merge refuses an input whose header covers other TXIDs than its name says", async () => {
  const { files } = await history(11, 512, 3);
  const h = (await decodeLtx(files[1])).header;
  const named = (max: bigint) => [
    { name: "a", source: [files[0]] },
    { name: "L0/renamed.ltx", source: [files[1]], expect: { minTXID: h.minTXID, maxTXID: max } },
  ];
  await assertRejects(
    () => mergeLtx(named(h.maxTXID + 3n), new MemorySink()),
    LtxNameMismatchError,
    "L0/renamed.ltx",
  );
  await mergeLtx(named(h.maxTXID), new MemorySink()); // the name it has
});

import { join } from "node:path";
import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { decodeLtx, formatLtxFileName } from "../src/ltx/mod.ts";
import { MAX_MERGE_INPUTS, mergeLocalFiles } from "../src/replicate/local_merge.ts";
import { history } from "./helpers/history.ts";

async function writeHistory(dir: string, files: Uint8Array[]): Promise<string[]> {
  const paths: string[] = [];
  for (const [i, f] of files.entries()) {
    const p = join(dir, formatLtxFileName(BigInt(i + 1), BigInt(i + 1)));
    await Deno.writeFile(p, f);
    paths.push(p);
  }
  return paths;
}

Deno.test("merging more local files than can be open at once goes through temporary files and equals the whole history", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-local-merge-" });
  try {
    const count = MAX_MERGE_INPUTS * 2 + 7; // two rounds of grouping are not needed, one is
    const { files, states } = await history(21, 512, count);
    const paths = await writeHistory(dir, files);
    for (const from of [0, 3]) {
      const merge = await mergeLocalFiles(paths.slice(from), "test");
      const bytes = new Uint8Array(await new Response(merge.stream).arrayBuffer());
      await merge.result;
      await merge.close();
      const merged = await decodeLtx(bytes);
      assertEquals([merged.header.minTXID, merged.header.maxTXID], [
        BigInt(from + 1),
        BigInt(count),
      ]);
      assertEquals(merged.trailer.postApplyChecksum, states[count - 1].checksum);
      if (from === 0) {
        const want = [...states[count - 1].model.entries()].sort((a, b) => a[0] - b[0]);
        assertEquals(merged.pages.map((p) => [p.pgno, p.data]), want);
      }
    }
    // only the inputs are left: the temporary files are gone
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).length, count);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt local file fails the merge and leaves no temporary file behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-local-merge-" });
  try {
    const { files } = await history(22, 512, MAX_MERGE_INPUTS + 10);
    const paths = await writeHistory(dir, files);
    const bad = files[MAX_MERGE_INPUTS + 5].slice();
    bad[bad.length - 1] ^= 1;
    await Deno.writeFile(paths[MAX_MERGE_INPUTS + 5], bad);
    // the file is in the second group: its pre-merge into a temporary file fails
    await assertRejects(() => mergeLocalFiles(paths, "test"), Error, "checksum mismatch");
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).length, paths.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A restore whose newest snapshot is corrupt falls back to an older one
 * (issue 15, item 16): with real `strata replicate` processes writing a file
 * and an S3 (fauxqs) replica, a newest snapshot (level 9, merged from the
 * replica's own files as compaction does) gets one byte flipped in its page
 * data. `restore` then restores exactly the source's data from the older
 * snapshot and the L0 files after it, and says which file it left out;
 * `verify` fails naming it; with no other path, `restore` fails naming it.
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { strata } from "./helpers/strata.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { listAllFiles, planRestore } from "../src/restore/mod.ts";
import { formatLtxFileName, formatTXID, MemorySink, mergeLtx } from "../src/ltx/mod.ts";
import { replicaFileLabel } from "../src/storage/mod.ts";
import { bytesOf, digestOf, put, replicatedSource, SNAPSHOT } from "./helpers/trust.ts";

/** Where `strata` run by the tests caches downloads (see helpers/strata.ts). */
function cacheDir(): string {
  return join(Deno.env.get("TMPDIR") ?? "/tmp", "strata-test-cache");
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) out.push(...await filesUnder(p));
      else if (e.isFile) out.push(p);
    }
  } catch { /* none yet */ }
  return out;
}

Deno.test("a corrupt newest snapshot: restore falls back to the older snapshot and the files after it, or fails naming it", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-fallback-" });
  const env = TEST_CREDENTIALS;
  try {
    const src = await replicatedSource(dir, s3.endpoint, await s3.createBucket());
    const source = await digestOf(src.db);
    const out = join(dir, "out.db");
    for (const r of src.replicas) {
      const c = r.client;
      const files = await listAllFiles(c);
      const latest = planRestore(files, {}, c.location);
      const top = latest.txid;
      assert(latest.files.length >= 2, `${r.kind}: an older snapshot and files after it`);
      // the newest snapshot, merged from the files that restore TXID `top`
      const inputs = [];
      for (const f of latest.files) {
        inputs.push({
          name: replicaFileLabel(c.location, f),
          source: [await bytesOf(c, f)],
          expect: f,
        });
      }
      const sink = new MemorySink();
      await mergeLtx(inputs, sink);
      const snapshot = sink.bytes();
      await put(c, SNAPSHOT, 1n, top, snapshot);
      const plan = planRestore(await listAllFiles(c), {}, c.location);
      assertEquals(plan.files.length, 1, `${r.kind}: the restore starts from the new snapshot`);
      assertEquals(plan.files[0].level, SNAPSHOT);

      // one byte of page data flipped
      const bad = snapshot.slice();
      bad[Math.floor(bad.length / 2)] ^= 0x10;
      await put(c, SNAPSHOT, 1n, top, bad);
      const name = `L9/${formatLtxFileName(1n, top)}`;
      const rr = await strata(["restore", "-json", "-o", out, r.url], { env });
      assertEquals(rr.code, 0, `${r.kind}: ${rr.stderr}`);
      const report = JSON.parse(rr.stdout);
      assertEquals(report.txid, formatTXID(top));
      assertEquals(report.skipped.length, 1, rr.stdout);
      assert(report.skipped[0].file.endsWith(name), rr.stdout);
      const got = await digestOf(out);
      assertEquals(got.digest, source.digest, `${r.kind}: the source's data`);
      assertEquals(got.integrity, "ok");
      assert(rr.stderr.includes(name), `${r.kind}: names the file it left out: ${rr.stderr}`);
      assert(/WARN/.test(rr.stderr) && /failed its checks/.test(rr.stderr), rr.stderr);
      await Deno.remove(out);
      // the file that failed never enters the restore cache (network replicas are cached)
      for (const cached of await filesUnder(cacheDir())) {
        const b = await Deno.readFile(cached);
        assert(
          b.length !== bad.length || !b.every((x, i) => x === bad[i]),
          `${r.kind}: the corrupt snapshot is in the restore cache at ${cached}`,
        );
      }
      const v = await strata(["verify", "-no-progress", r.url], { env });
      assertEquals(v.code, 1, `${r.kind}: verify said ${v.stdout}`);
      assert(v.stdout.includes("FAILED") && v.stdout.includes(name), v.stdout);

      // no other path: every other file gone (the first snapshot, too)
      const older = (await listAllFiles(c)).filter((f) =>
        f.level !== SNAPSHOT || f.maxTXID !== top
      );
      await c.deleteFiles(older);
      const none = await strata(["restore", "-o", out, r.url], { env });
      assertEquals(none.code, 1, `${r.kind}: restored with nothing verified: ${none.stdout}`);
      assert(none.stderr.includes(name), `${r.kind}: names ${name}: ${none.stderr}`);
      assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing restored");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

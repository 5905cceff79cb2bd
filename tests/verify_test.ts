/**
 * `strata verify` against the live database and against a replica alone,
 * `validation-interval` in replicate, and byte flips in replica files: both
 * restore and verify name the damaged file and refuse.
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { listAllFiles, planRestore } from "../src/restore/mod.ts";
import { decodeLtx, formatLtxFileName } from "../src/ltx/mod.ts";
import { exists } from "../src/fsutil.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, Replicating, runWriter, strata } from "./helpers/strata.ts";

interface Setup {
  dir: string;
  db: string;
  replica: string;
  config: string;
}

async function replicated(extra = ""): Promise<Setup & { log: string }> {
  const dir = await Deno.makeTempDir({ prefix: "strata-verify-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const config = join(dir, "strata.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n${extra}`,
  );
  await runWriter(db, "more", 1, join(dir, "marks.jsonl"));
  const rep = new Replicating(["-config", config]);
  await rep.waitForLog();
  await runWriter(db, "more", 2, join(dir, "marks.jsonl"));
  await new Promise((r) => setTimeout(r, 1200));
  const out = await rep.stop();
  assertEquals(out.code, 0, out.stderr);
  return { dir, db, replica, config, log: out.stderr };
}

Deno.test("verify: the live database and the replica agree at the same TXID; a replica URL alone; a different database fails with both checksums", async () => {
  const s = await replicated();
  try {
    const v = await strata(["verify", "-config", s.config, s.db]);
    assertEquals(v.code, 0, v.stdout + v.stderr);
    assert(v.stdout.includes("OK") && v.stdout.includes("compared with live database"), v.stdout);
    // progress on stderr (plain lines when it is not a terminal), none with -no-progress
    assertMatch(v.stderr, /verify \S+ 100% .* in \d/);
    const quiet = await strata(["verify", "-no-progress", "-config", s.config, s.db]);
    assertEquals(quiet.code, 0, quiet.stderr);
    assert(!/verify \S+ \d+%/.test(quiet.stderr), quiet.stderr);

    const j = await strata(["verify", "-json", `file://${s.replica}`]);
    assertEquals(j.code, 0, j.stdout + j.stderr);
    const [report] = JSON.parse(j.stdout);
    assertEquals(report.ok, true);
    assertEquals(report.comparedWith, "replica checksums");
    assertEquals(report.txid.length, 16);

    // another database (no strata state of its own) pointed at the same replica
    const other = join(s.dir, "other.db");
    await Deno.copyFile(s.db, other);
    const w = await new Deno.Command("sqlite3", {
      args: [other, "INSERT INTO items (name, body, n) VALUES ('other', x'01', 1);"],
    }).output();
    assertEquals(w.code, 0);
    await Deno.writeTextFile(
      s.config,
      `dbs:\n  - path: ${other}\n    replicas:\n      - url: file://${s.replica}\n`,
    );
    const bad = await strata(["verify", "-config", s.config, "-json", other]);
    assertEquals(bad.code, 1, bad.stdout + bad.stderr);
    const [b] = JSON.parse(bad.stdout);
    assertEquals(b.ok, false);
    assert(b.error.includes("differs from the live database"), b.error);
    assert(b.error.includes(b.checksum) && b.error.includes(b.expected), b.error);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("validation-interval: replicate restores and compares on a schedule", async () => {
  const s = await replicated("        validation-interval: 400ms\n");
  try {
    assert(s.log.includes("replica validated"), s.log);
    assert(/comparedWith="local history at TXID/.test(s.log), s.log);
    assert(!s.log.includes("replica validation failed"), s.log);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

/** Whether two LTX files decode to the same header, pages and trailer (false when either fails). */
async function samePages(a: Uint8Array, b: Uint8Array): Promise<boolean> {
  try {
    const [da, db] = [await decodeLtx(a), await decodeLtx(b)];
    return JSON.stringify(da.header, (_, v) => typeof v === "bigint" ? String(v) : v) ===
        JSON.stringify(db.header, (_, v) => typeof v === "bigint" ? String(v) : v) &&
      da.trailer.postApplyChecksum === db.trailer.postApplyChecksum &&
      da.trailer.fileChecksum === db.trailer.fileChecksum &&
      da.pages.length === db.pages.length &&
      da.pages.every((p, i) =>
        p.pgno === db.pages[i].pgno && p.data.every((x, j) => x === db.pages[i].data[j])
      );
  } catch {
    return false;
  }
}

Deno.test("byte flips in replica files: restore and verify name the file and refuse", async () => {
  const s = await replicated();
  try {
    const client = new FileReplicaClient(s.replica);
    const files = await listAllFiles(client);
    const latest = planRestore(files, {}, s.replica);
    // the snapshot the latest restore starts from, and an L0 file after it (restored by TXID)
    const targets = [latest.files[0]];
    const l0 = files.find((f) =>
      f.level === 0 && f.minTXID > 1n &&
      planRestore(files, { txid: f.maxTXID }, s.replica).files.includes(f)
    );
    if (l0) targets.push(l0);
    for (const f of targets) {
      const path = client.filePath(f.level, f.minTXID, f.maxTXID);
      const original = await Deno.readFile(path);
      const inLatest = latest.files.includes(f);
      // the state at that TXID, restored before any flip
      const ref = join(s.dir, "reference.db");
      const made = await strata([
        "restore",
        "-o",
        ref,
        "-txid",
        String(f.maxTXID),
        `file://${s.replica}`,
      ]);
      assertEquals(made.code, 0, made.stderr);
      const want = (await digestOf(ref)).digest;
      await Deno.remove(ref);
      // in the header, in the page data, in the trailer's checksums
      for (const at of [40, Math.floor(original.length / 2), original.length - 10]) {
        const flipped = original.slice();
        flipped[at] ^= 0x20;
        await Deno.writeFile(path, flipped);
        const name = formatLtxFileName(f.minTXID, f.maxTXID);
        const out = join(s.dir, "restored.db");
        const r = await strata(
          ["restore", "-o", out, "-txid", String(f.maxTXID), `file://${s.replica}`],
        );
        if (r.code === 0 && !r.stderr.includes(name) && await samePages(original, flipped)) {
          // the flip fell on an LZ4 match offset that points at equal bytes: the file still
          // holds exactly the same pages and checksums, and the restore is that state
          assertEquals((await digestOf(out)).digest, want, `flip at ${at} of ${name}`);
          await Deno.remove(out);
          await Deno.writeFile(path, original);
          continue;
        }
        assert(r.stderr.includes(name), `restore names ${name}: ${r.stderr}`);
        if (r.code === 0) {
          // another file holds the same TXIDs (an L1 merge of them): the flipped one is left
          // out by name and the state restored is exactly the one at that TXID
          assert(/failed its checks/.test(r.stderr), r.stderr);
          assertEquals((await digestOf(out)).digest, want, `flip at ${at} of ${name}`);
          await Deno.remove(out);
        } else {
          assertEquals(r.code, 1, `flip at ${at} of ${name}: ${r.stderr}`);
          assert(!(await exists(out)), "nothing at the output path");
        }
        if (inLatest) {
          const v = await strata(["verify", `file://${s.replica}`]);
          assertEquals(v.code, 1, v.stdout);
          assert(v.stdout.includes("FAILED") && v.stdout.includes(name), v.stdout);
        }
        await Deno.writeFile(path, original);
      }
    }
    const ok = await strata(["verify", "-config", s.config, s.db]);
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

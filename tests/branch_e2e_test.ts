/**
 * Branches end to end, with real processes: a Python app writes while
 * `strata replicate` runs; `strata clone` branches the replica at a past
 * mark; the branch restores to exactly that mark; a database restored from
 * the branch is replicated into the branch while an app writes to it, and
 * the branch then restores to the app's state; the source is untouched;
 * `strata branches` lists it and `strata clone -delete` removes it.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import {
  digestOf,
  fileChecksum,
  readMarks,
  Replicating,
  runWriter,
  strata,
} from "./helpers/strata.ts";
import { parseLtxFileName } from "../src/ltx/mod.ts";

/** Every LTX-named file under `root/ltx/<level>` with its level and size. */
async function filesUnder(root: string): Promise<{ level: number; name: string; size: number }[]> {
  const out = [];
  try {
    for await (const l of Deno.readDir(join(root, "ltx"))) {
      for await (const f of Deno.readDir(join(root, "ltx", l.name))) {
        const st = await Deno.stat(join(root, "ltx", l.name, f.name));
        out.push({ level: Number(l.name), name: f.name, size: st.size });
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

function checksumIn(stdout: string): bigint {
  const m = /checksum ([0-9a-f]{16})/.exec(stdout);
  assert(m, `no checksum in ${stdout}`);
  return BigInt("0x" + m[1]);
}

Deno.test("clone at a past mark, restore the branch, replicate into it, list and delete it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const branch = join(dir, "branch");
  const marks = join(dir, "marks.jsonl");
  try {
    await runWriter(db, "more", 11, marks);
    // a 100 ms sync interval (so a 100 ms monitor tick): the writer's marks follow its last
    // commit by 0.6 s, which a 1 s tick (the default) does not always capture in time
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n`,
    );
    const rep = new Replicating(["-config", cfg]);
    await rep.waitForLog();
    await runWriter(db, "more", 12, marks);
    await runWriter(db, "more", 13, marks);
    const stopped = await rep.stop("SIGINT");
    assertEquals(stopped.code, 0, stopped.stderr);
    const all = await readMarks(marks);
    const mid = all[1]; // the second mark: history continues after it
    const sourceFinal = await digestOf(db);
    const sourceBefore = await filesUnder(replica);

    // clone: only a manifest in the branch, a registration in the source
    const c = await strata([
      "clone",
      "-timestamp",
      new Date(mid.time).toISOString(),
      `file://${replica}`,
      `file://${branch}`,
    ]);
    assertEquals(c.code, 0, c.stderr);
    assertMatch(c.stdout, /created branch file:\/\/.*branch of file:\/\/.*replica at TXID/);
    const written = await filesUnder(branch);
    assertEquals(written.map((f) => f.level), [10]);
    const registered = (await filesUnder(replica)).filter((f) => f.level === 11);
    assertEquals(registered.length, 1);
    assert(written[0].size + registered[0].size < 64 * 1024, "clone wrote 64 KiB or more");
    // the manifest is self-describing JSON naming the source and the base
    const manifest = JSON.parse(
      await Deno.readTextFile(join(branch, "ltx", "10", written[0].name)),
    );
    assertEquals(manifest.format, "strata-branch");
    assertEquals(manifest.version, 1);
    assertEquals(manifest.source, `file://${replica}`);
    assert(manifest.files.length >= 1 && manifest.files[0].minTXID === "0000000000000001");

    // the branch restores to the mark, exactly as a point-in-time restore of the source does
    const fromBranch = join(dir, "staging.db");
    const rb = await strata(["restore", "-o", fromBranch, `file://${branch}`]);
    assertEquals(rb.code, 0, rb.stderr);
    assertEquals((await digestOf(fromBranch)).digest, mid.digest);
    const pitr = join(dir, "pitr.db");
    const rp = await strata([
      "restore",
      "-o",
      pitr,
      "-timestamp",
      new Date(mid.time).toISOString(),
      `file://${replica}`,
    ]);
    assertEquals(rp.code, 0, rp.stderr);
    assertEquals(checksumIn(rb.stdout), checksumIn(rp.stdout));
    assertEquals(await fileChecksum(fromBranch), checksumIn(rb.stdout));
    assertEquals(/(\d+) files/.exec(rb.stdout)?.[1], /(\d+) files/.exec(rp.stdout)?.[1]);

    // replicate the staging database into the branch while an app writes to it
    const stagingMarks = join(dir, "staging-marks.jsonl");
    const srep = new Replicating([fromBranch, `file://${branch}`]);
    await srep.waitForLog();
    await runWriter(fromBranch, "more", 21, stagingMarks);
    const sstop = await srep.stop("SIGINT");
    assertEquals(sstop.code, 0, sstop.stderr);
    const staged = await digestOf(fromBranch);
    assertEquals(staged.digest, (await readMarks(stagingMarks)).at(-1)!.digest);
    // the branch appended its own files after the base: no full copy, no TXID 1
    const own = (await filesUnder(branch)).filter((f) => f.level <= 9);
    assert(own.length > 0, "nothing replicated into the branch");
    const base = BigInt("0x" + manifest.base.txid);
    for (const f of own) {
      const r = parseLtxFileName(f.name)!;
      assert(r.minTXID > base, `branch file ${f.name} does not come after the base`);
    }
    const latest = join(dir, "branch-latest.db");
    const rl = await strata(["restore", "-o", latest, `file://${branch}`]);
    assertEquals(rl.code, 0, rl.stderr);
    assertEquals((await digestOf(latest)).digest, staged.digest);
    assertEquals(await fileChecksum(latest), checksumIn(rl.stdout));

    // the source is untouched: same files (plus the registration), same latest state
    const sourceAfter = (await filesUnder(replica)).filter((f) => f.level <= 9);
    assertEquals(sourceAfter, sourceBefore);
    const src = join(dir, "source-latest.db");
    const rs = await strata(["restore", "-o", src, `file://${replica}`]);
    assertEquals(rs.code, 0, rs.stderr);
    assertEquals((await digestOf(src)).digest, sourceFinal.digest);

    // branches lists it with its base; the branch knows its source
    const ls = await strata(["branches", "-json", `file://${replica}`]);
    assertEquals(ls.code, 0, ls.stderr);
    const listed = JSON.parse(ls.stdout);
    assertEquals(listed.branches.length, 1);
    assertEquals(listed.branches[0].branch, `file://${branch}`);
    assertEquals(listed.branches[0].txid, manifest.base.txid);
    const self = await strata(["branches", `file://${branch}`]);
    assertMatch(self.stdout, /is a branch of file:\/\/.*replica at TXID/);

    // a second clone into a used location is refused, and so is a branch of a branch
    const again = await strata(["clone", `file://${replica}`, `file://${branch}`]);
    assertEquals(again.code, 1);
    assertMatch(again.stderr, /already holds files .*empty location/);
    const nested = await strata(["clone", `file://${branch}`, `file://${dir}/nested`]);
    assertEquals(nested.code, 1);
    assertMatch(nested.stderr, /is itself a branch/);

    // delete: the branch's files and the registration go; the source's files stay
    const del = await strata(["clone", "-delete", `file://${branch}`]);
    assertEquals(del.code, 0, del.stderr);
    assertEquals(await filesUnder(branch), []);
    assertEquals((await filesUnder(replica)).filter((f) => f.level === 11), []);
    assertEquals((await filesUnder(replica)).filter((f) => f.level <= 9), sourceBefore);
    const none = await strata(["branches", `file://${replica}`]);
    assertMatch(none.stdout, /no branches of/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("branches over S3 (fauxqs): clone into S3 and into a directory, restore through the cache, delete", async () => {
  const { startS3Server, TEST_CREDENTIALS } = await import("./helpers/fauxqs.ts");
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-s3-" });
  const env = { ...TEST_CREDENTIALS, STRATA_CACHE_DIR: join(dir, "cache") };
  try {
    const bucket = await s3.createBucket();
    const src = `s3://${bucket}/prod?endpoint=${s3.endpoint}`;
    const db = join(dir, "app.db");
    const marks = join(dir, "marks.jsonl");
    await runWriter(db, "more", 31, marks);
    const rep = new Replicating([db, src], env);
    await rep.waitForLog();
    await runWriter(db, "more", 32, marks);
    const stopped = await rep.stop("SIGINT");
    assertEquals(stopped.code, 0, stopped.stderr);
    const all = await readMarks(marks);
    const at = new Date(all[1].time).toISOString();

    const inS3 = `s3://${bucket}/staging/pr-1?endpoint=${s3.endpoint}`;
    const inDir = `file://${dir}/pr-2`;
    for (const dest of [inS3, inDir]) {
      const c = await strata(["clone", "-timestamp", at, src, dest], { env });
      assertEquals(c.code, 0, c.stderr);
    }
    const listed = await strata(["branches", "-json", src], { env });
    assertEquals(listed.code, 0, listed.stderr);
    assertEquals(JSON.parse(listed.stdout).branches.length, 2);

    // the directory branch's source is on another store: followed once the user allows it
    const refused = await strata(["restore", "-o", join(dir, "refused.db"), inDir], { env });
    assertEquals(refused.code, 1, refused.stdout);
    assertMatch(refused.stderr, /not on the branch's own store .*pass -allow-source/);
    for (const [i, dest] of [inS3, inDir, inDir].entries()) {
      const out = join(dir, `r${i}.db`);
      const allow = dest === inDir ? ["-allow-source", src] : [];
      const r = await strata(["restore", ...allow, "-o", out, dest], { env });
      assertEquals(r.code, 0, r.stderr);
      assertEquals((await digestOf(out)).digest, all[1].digest);
    }
    // the S3 files the restores downloaded are in the cache
    const cached = [];
    for await (const e of Deno.readDir(join(dir, "cache"))) cached.push(e.name);
    assert(cached.length >= 1, "nothing cached");
    // copies of the data are private: cached files 0600 in 0700 folders, restored files 0600
    const modes = async (p: string): Promise<string[]> => {
      const st = await Deno.stat(p);
      const seen = [`${st.isDirectory ? "dir" : "file"} ${(st.mode! & 0o777).toString(8)}`];
      if (st.isDirectory) {
        for await (const e of Deno.readDir(p)) seen.push(...await modes(join(p, e.name)));
      }
      return seen;
    };
    assertEquals(new Set(await modes(join(dir, "cache"))), new Set(["dir 700", "file 600"]));
    assertEquals((await Deno.stat(join(dir, "r0.db"))).mode! & 0o777, 0o600);

    for (const dest of [inS3, inDir]) {
      const named = dest === inDir ? ["-source", src] : [];
      const d = await strata(["clone", "-delete", ...named, dest], { env });
      assertEquals(d.code, 0, d.stderr);
    }
    const none = await strata(["branches", src], { env });
    assertMatch(none.stdout, /no branches of/);
    const gone = await strata(["restore", "-o", join(dir, "gone.db"), inS3], { env });
    assertEquals(gone.code, 1);
  } finally {
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

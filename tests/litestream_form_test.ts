/**
 * Replicas in Litestream's form (`format: litestream`): every file passes an
 * independent reader that applies released Litestream v0.5's rules
 * (helpers/litestream_reader.ts), which restores the latest state to exactly
 * the database's bytes; strata still reads the checksums it kept, verifies
 * restores with them and continues the replica after a restart.
 */

import { join } from "node:path";
import { decodeLtx, formatChecksum, MemorySink } from "../src/ltx/mod.ts";
import { LtxEncoder } from "../src/ltx/encoder.ts";
import { writeLitestreamForm } from "../src/ltx/litestream_form.ts";
import { makeHeader } from "../src/ltx/header.ts";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { Replicating, runWriter, strata } from "./helpers/strata.ts";
import { python, waitFor } from "./helpers/ops.ts";
import { databaseStates, ltxOfStates, putFile, stateChecksum } from "./helpers/litestream_v05.ts";
import { litestreamRestore, readLitestreamFile } from "./helpers/litestream_reader.ts";
import { LitestreamFormClient } from "../src/storage/litestream_form_client.ts";

const STATEMENTS = [
  "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT); " +
  "INSERT INTO t (body) WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 400) SELECT printf('row %d %s', v, hex(v * 7919)) FROM s",
  "UPDATE t SET body = body || ' changed' WHERE id % 3 = 0",
  "DELETE FROM t WHERE id % 5 = 0",
];

async function litestreamForm(bytes: Uint8Array, post: bigint): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeLitestreamForm(ReadableStream.from([bytes]), sink, post, "test");
  return sink.bytes();
}

Deno.test("Litestream's form: an independent reader with Litestream's rules accepts it; strata reads the kept checksums", async () => {
  const states = await databaseStates(STATEMENTS, { wal: true });
  const snap = await ltxOfStates(states, 1n, 1n, 1000, { checksums: true });
  const inc = await ltxOfStates(states, 2n, 3n, 3000, { checksums: true });
  const snapPost = stateChecksum(states[0]);
  const incPost = stateChecksum(states[2]);
  for (
    const [bytes, post, state, name] of [[snap, snapPost, states[0], "snapshot"], [
      inc,
      incPost,
      states[2],
      "incremental",
    ]] as const
  ) {
    const form = await litestreamForm(bytes, post);
    const lf = await readLitestreamFile(form, name);
    assertEquals(lf.flags, 2, `${name}: NoChecksum`);
    for (const [pgno, page] of lf.pages) {
      const want = state.subarray((pgno - 1) * 4096, pgno * 4096);
      assert(page.every((b, i) => b === want[i]), `${name}: page ${pgno} as in the database`);
    }
    const d = await decodeLtx(form, name);
    assertEquals(d.header.kept?.post, post, `${name}: strata reads the kept post-apply checksum`);
    assertEquals(d.trailer.postApplyChecksum, post);
    assertEquals(d.header.flags, 0, `${name}: read as the checksummed file it was made from`);
  }
  // a file whose post-apply checksum is not its content's cannot be put in Litestream's form
  let refused = "";
  await litestreamForm(inc, snapPost).catch((e) => (refused = (e as Error).message));
  assertMatch(refused, /ends at checksum .* not .* as expected/);
});

Deno.test("a kept post-apply checksum that is not the restored state's is refused by name", async () => {
  const states = await databaseStates(STATEMENTS, { wal: true });
  const dir = await Deno.makeTempDir({ prefix: "strata-lsform-" });
  try {
    const client = new FileReplicaClient(join(dir, "rep"));
    const snap = await ltxOfStates(states, 1n, 1n, 1000, { checksums: true });
    await putFile(
      client,
      SNAPSHOT_LEVEL,
      1n,
      1n,
      await litestreamForm(snap, stateChecksum(states[0])),
      1000,
    );
    // TXID 2's pages with a kept post-apply checksum of another state (its file checksum is valid)
    const good = await decodeLtx(await ltxOfStates(states, 2n, 2n, 2000, { checksums: true }));
    const wrong = stateChecksum(states[2]);
    const sink = new MemorySink();
    const enc = new LtxEncoder(sink, makeHeader({ ...good.header }), {
      litestream: { post: wrong },
    });
    for (const p of good.pages) await enc.writePage(p.pgno, p.data);
    await enc.finish(wrong);
    await putFile(client, 0, 2n, 2n, sink.bytes(), 2000);
    const out = join(dir, "out.db");
    const r = await strata(["restore", "-no-progress", "-o", out, `file://${join(dir, "rep")}`]);
    assert(r.code !== 0, "refused");
    assertMatch(
      r.stderr,
      new RegExp(
        `0000000000000002-0000000000000002\\.ltx.*post-apply checksum ${formatChecksum(wrong)}`,
        "s",
      ),
    );
    assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replicate with format: litestream: the app's database restored by Litestream's rules and by strata, verified; a restart continues", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsform-" });
  try {
    const db = join(dir, "app.db");
    const rep = join(dir, "replica");
    const marks = join(dir, "marks.jsonl");
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `levels:\n  - interval: 1s\ndbs:\n  - path: ${db}\n    replicas:\n      - url: file://${rep}\n        format: litestream\n        sync-interval: 100ms\n`,
    );
    await runWriter(db, "more", 1, marks);
    const client = new FileReplicaClient(rep);
    for (let round = 0; round < 2; round++) {
      const s = new Replicating(["-config", cfg]);
      try {
        await s.waitForLog();
        await runWriter(db, "more", 2 + round, marks);
        await waitFor("an L1 file", async () => (await client.listFiles(1)).length > round);
      } finally {
        const out = await s.stop();
        assertEquals(out.code, 0, out.stderr);
        assert(
          !/diverged|re-seed/i.test(out.stderr),
          `round ${round}: no divergence, no re-seed\n${out.stderr}`,
        );
      }
    }
    // every file of every level passes Litestream's rules
    let files = 0;
    for (let level = 0; level <= SNAPSHOT_LEVEL; level++) {
      for (const f of await client.listFiles(level)) {
        const chunks: Uint8Array[] = [];
        for await (const c of await client.openFile(level, f.minTXID, f.maxTXID)) chunks.push(c);
        const bytes = new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
        await readLitestreamFile(bytes, `L${level}/${f.minTXID}-${f.maxTXID}`);
        files++;
      }
    }
    assert(files >= 4, `files checked: ${files}`);
    await python(
      "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')",
      db,
    );
    const want = await Deno.readFile(db);
    const ls = await litestreamRestore(client);
    assert(
      ls.length === want.length && ls.every((b, i) => b === want[i]),
      "Litestream's restore equals the database",
    );
    const out = join(dir, "strata.db");
    const r = await strata(["restore", "-json", "-no-progress", "-o", out, `file://${rep}`]);
    assertEquals(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assertEquals(report.checksumVerified, true);
    assertEquals(await Deno.readFile(out), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("format: litestream: a file that fails its checks while re-encoded is never stored (the upload errors)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsform-bad-" });
  try {
    const stored = new FileReplicaClient(join(dir, "replica"));
    const client = new LitestreamFormClient(stored);
    const states = await databaseStates(STATEMENTS, { wal: true });
    // a snapshot with one page's bytes damaged far into the file: the new form has streamed
    // into the upload for a while when the check fails
    const good = await ltxOfStates(states, 1n, 1n, 1000, { checksums: true });
    assert(good.length > 8_000, `a file long enough to stream (${good.length} bytes)`);
    const bad = good.slice();
    bad[Math.floor(bad.length * 0.8)] ^= 0xff;
    let err = "";
    await client.writeFile(9, 1n, 1n, ReadableStream.from([bad]), new Date())
      .catch((e) => (err = (e as Error).message));
    assertMatch(err, /L9\/0000000000000001-0000000000000001\.ltx/);
    assertEquals(await stored.listFiles(9), [], "nothing stored");
    const left: string[] = [];
    try {
      for await (const e of Deno.readDir(join(dir, "replica", "ltx", "9"))) left.push(e.name);
    } catch { /* never made: nothing left either */ }
    assertEquals(left, [], "no partial file left behind");
    // the same file undamaged is stored, in Litestream's form
    await client.writeFile(9, 1n, 1n, ReadableStream.from([good]), new Date());
    assertEquals((await stored.listFiles(9)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

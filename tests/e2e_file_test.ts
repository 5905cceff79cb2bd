/**
 * End to end, with real processes: a Python app writes while `strata
 * replicate` runs as its own process; restores are compared with what the app
 * recorded.
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

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "strata-e2e-" });
  return {
    dir,
    db: join(dir, "app.db"),
    replica: join(dir, "replica"),
    marks: join(dir, "marks.jsonl"),
  };
}

function extractChecksum(stdout: string): bigint {
  const m = /checksum ([0-9a-f]{16})/.exec(stdout);
  assert(m, `no checksum in ${stdout}`);
  return BigInt("0x" + m[1]);
}

Deno.test("replicate while an app writes; restore latest, timestamps and a TXID exactly", async () => {
  const { dir, db, replica, marks } = await setup();
  try {
    await runWriter(db, "more", 1, marks); // the database exists before replication starts
    // a point in time is as fine as the sync interval (pending captures go up as one file):
    // shorter than the writer's 0.6 s pauses on each side of a mark, so every mark is a file boundary
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${replica}\n        sync-interval: 300ms\n`,
    );
    const rep = new Replicating(["-config", cfg]);
    await rep.waitForLog();
    await runWriter(db, "main", 2, marks);
    const stopped = await rep.stop("SIGINT");
    assertEquals(stopped.code, 0, stopped.stderr);

    // the first full copy is the replica's snapshot, once: not an L0 file, not in the meta directory
    type Listed = { level: number; minTXID: string; maxTXID: string; size: number };
    const listed = JSON.parse(
      (await strata(["ltx", "-level", "all", "-json", `file://${replica}`])).stdout,
    ) as Listed[];
    const firsts = listed.filter((f) => BigInt("0x" + f.minTXID) === 1n);
    assertEquals(firsts.map((f) => f.level), [9], JSON.stringify(listed));
    const local = [...Deno.readDirSync(join(dir, ".app.db-strata", "ltx", "0"))].map((e) => e.name);
    assert(!local.some((n) => n.startsWith("0000000000000001-")), `meta directory: ${local}`);

    const all = await readMarks(marks);
    const source = await digestOf(db);
    assertEquals(source.digest, all[all.length - 1].digest);

    // latest
    const out = join(dir, "latest.db");
    const r = await strata(["restore", "-o", out, `file://${replica}`]);
    assertEquals(r.code, 0, r.stderr);
    const restored = await digestOf(out);
    assertEquals(restored.digest, source.digest);
    assertEquals(restored.integrity, "ok");
    // same rolling checksum as the source database file (strata stopped, WAL checkpointed away)
    assertEquals(await fileChecksum(out), extractChecksum(r.stdout));
    assertEquals(await fileChecksum(db), extractChecksum(r.stdout));

    // every mark, by timestamp (the grown and vacuumed ones included)
    for (const m of all.slice(1)) {
      const p = join(dir, `at-${m.label}.db`);
      const rr = await strata([
        "restore",
        "-o",
        p,
        "-timestamp",
        new Date(m.time).toISOString(),
        `file://${replica}`,
      ]);
      assertEquals(rr.code, 0, rr.stderr);
      const d = await digestOf(p);
      assertEquals(d.digest, m.digest, `state at ${m.label}`);
      assertEquals(d.integrity, "ok");
    }

    // a TXID in the middle equals the timestamp restore of that file's creation time
    const ls = await strata(["ltx", "-level", "0", "-json", `file://${replica}`]);
    const files = JSON.parse(ls.stdout) as { maxTXID: string; createdAt: string }[];
    assert(files.length > 5, `only ${files.length} L0 files`);
    const mid = files[Math.floor(files.length / 2)];
    const a = join(dir, "txid.db");
    const b = join(dir, "txid-ts.db");
    assertEquals(
      (await strata(["restore", "-o", a, "-txid", mid.maxTXID, `file://${replica}`])).code,
      0,
    );
    assertEquals(
      (await strata(["restore", "-o", b, "-timestamp", mid.createdAt, `file://${replica}`])).code,
      0,
    );
    const later = files.find((f) => f.createdAt === mid.createdAt && f.maxTXID > mid.maxTXID);
    if (!later) assertEquals((await digestOf(a)).digest, (await digestOf(b)).digest);
    assertEquals((await digestOf(a)).integrity, "ok");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a TRUNCATE checkpoint by another process while strata is stopped is noticed and snapshotted", async () => {
  const { dir, db, replica, marks } = await setup();
  try {
    await runWriter(db, "more", 3, marks);
    let rep = new Replicating([db, `file://${replica}`]);
    await rep.waitForLog();
    await runWriter(db, "more", 4, marks);
    assertEquals((await rep.stop()).code, 0);
    // while strata is stopped: writes, then a TRUNCATE checkpoint, by another process
    await runWriter(db, "truncate", 5, marks);
    rep = new Replicating([db, `file://${replica}`]);
    await rep.waitForLog();
    await runWriter(db, "more", 6, marks);
    const out2 = await rep.stop();
    assertEquals(out2.code, 0, out2.stderr);
    assertMatch(out2.stderr, /capturing a full copy of the database.*(checkpointed|reset|differs)/);
    const all = await readMarks(marks);
    const out = join(dir, "r.db");
    const r = await strata(["restore", "-o", out, `file://${replica}`]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(out)).digest, all[all.length - 1].digest);
    const t = join(dir, "t.db");
    // strata was stopped at the "truncated" mark, so the replica holds the state from before it then
    const ti = all.findIndex((m) => m.label === "truncated");
    const rt = await strata([
      "restore",
      "-o",
      t,
      "-timestamp",
      new Date(all[ti].time).toISOString(),
      `file://${replica}`,
    ]);
    assertEquals(rt.code, 0, rt.stderr);
    assertEquals((await digestOf(t)).digest, all[ti - 1].digest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an app committing as fast as it can: checkpoints under pressure, merged uploads, exact restore", async () => {
  const { dir, db, replica, marks } = await setup();
  try {
    await runWriter(db, "more", 7, marks);
    const rep = new Replicating([db, `file://${replica}`], { LOG_LEVEL: "debug" });
    await rep.waitForLog();
    await runWriter(db, "burst", 8, marks);
    const stopped = await rep.stop();
    assertEquals(stopped.code, 0, stopped.stderr);
    // the WAL was checkpointed by strata many times, and busy syncs merged local files
    const checkpoints = stopped.stderr.match(/DEBUG checkpoint/g)?.length ?? 0;
    assert(checkpoints >= 3, `only ${checkpoints} checkpoints:\n${stopped.stderr}`);
    assertMatch(stopped.stderr, /uploaded .*merged=\d+/);
    const all = await readMarks(marks);
    const out = join(dir, "r.db");
    const r = await strata(["restore", "-o", out, `file://${replica}`]);
    assertEquals(r.code, 0, r.stderr);
    const restored = await digestOf(out);
    assertEquals(restored.digest, all[all.length - 1].digest);
    assertEquals(restored.integrity, "ok");
    assertEquals(await fileChecksum(out), extractChecksum(r.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("levels, snapshots and retention on a schedule; status, ltx -level all, restore -dry-run", async () => {
  const { dir, db, replica, marks } = await setup();
  try {
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `levels:\n  - interval: 1s\n  - interval: 2s\nsnapshot:\n  interval: 3s\n  retention: 1h\n` +
        `l0-retention: 1s\nl0-retention-check-interval: 1s\n` +
        `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n`,
    );
    await runWriter(db, "more", 11, marks);
    const rep = new Replicating(["-config", cfg], { LOG_LEVEL: "debug" });
    await rep.waitForLog();
    await runWriter(db, "main", 12, marks);
    // let L1, L2, a snapshot and retention run
    for (const p of [/compacted .*level=2/, /snapshot interval/, /DEBUG retention .*deleted=\d+/]) {
      await rep.waitForLog(p);
    }
    // the replica catches up with every TXID captured
    let status;
    for (const end = Date.now() + 60_000;;) {
      const st = await strata(["status", "-config", cfg, "-json"]);
      assertEquals(st.code, 0, st.stderr);
      status = JSON.parse(st.stdout);
      if (status[0].replicas[0].txid === status[0].local.txid) break;
      assert(Date.now() < end, `replica behind after 60 s: ${st.stdout}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assertEquals(status[0].replicas[0].behindTXIDs, 0);
    // the levels (and the next scheduled snapshot) roll the writes up: a short plan to the end
    const dryRun = () =>
      strata(["restore", "-dry-run", "-o", join(dir, "x.db"), `file://${replica}`]);
    const plannedFiles = (out: string) => Number(/(\d+) files, \d+ bytes/.exec(out)![1]);
    for (const end = Date.now() + 60_000;;) {
      const d = await dryRun();
      assertEquals(d.code, 0, d.stderr);
      if (plannedFiles(d.stdout) <= 4) break;
      assert(Date.now() < end, `no plan of 4 files or fewer after 60 s:\n${d.stdout}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const stopped = await rep.stop();
    assertEquals(stopped.code, 0, stopped.stderr);
    assertMatch(stopped.stderr, /compacted .*level=2/);
    assertMatch(stopped.stderr, /snapshot interval/);
    assertMatch(stopped.stderr, /DEBUG retention .*deleted=\d+/);

    const ls = await strata(["ltx", "-level", "all", "-json", `file://${replica}`]);
    const files = JSON.parse(ls.stdout) as { level: number }[];
    for (const level of [1, 2, 9]) {
      assert(
        files.some((f) => f.level === level),
        `no L${level} file:\n${ls.stdout}\n${stopped.stderr}`,
      );
    }

    const dry = await dryRun();
    assertEquals(dry.code, 0, dry.stderr);
    const planned = plannedFiles(dry.stdout);
    assert(planned <= 4, `plan of ${planned} files:\n${dry.stdout}`);

    const all = await readMarks(marks);
    const out = join(dir, "r.db");
    const r = await strata(["restore", "-o", out, `file://${replica}`]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(out)).digest, all[all.length - 1].digest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an idle database: no compaction output, no uploads, no deletions, no replica growth", async () => {
  const { dir, db, replica, marks } = await setup();
  try {
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `levels:\n  - interval: 1s\n  - interval: 2s\nsnapshot:\n  interval: 2s\n  retention: 1h\n` +
        `l0-retention: 1h\nl0-retention-check-interval: 1s\n` +
        `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n`,
    );
    await runWriter(db, "more", 13, marks);
    const rep = new Replicating(["-config", cfg]);
    await rep.waitForLog();
    // (the first full copy is the snapshot; what the app commits next goes through the levels)
    await runWriter(db, "more", 5, marks);
    const listing = async () => {
      const r = await strata(["ltx", "-level", "all", "-json", `file://${replica}`]);
      return JSON.stringify(JSON.parse(r.stdout));
    };
    // the first sync, then L1, L2 and a snapshot catch up once (however long that takes here):
    // settled once the listing holds L2 and stays the same for a whole snapshot interval
    const levels = (l: string) => new Set(JSON.parse(l).map((f: { level: number }) => f.level));
    const end = Date.now() + 60_000;
    let seen = "";
    let since = Date.now();
    for (;;) {
      const now = await listing();
      if (now !== seen) [seen, since] = [now, Date.now()];
      else if (levels(now).has(2) && Date.now() - since >= 2500) break;
      assert(Date.now() < end, `no settled listing with L2 after 60 s: ${now}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = await listing();
    await new Promise((r) => setTimeout(r, 4000)); // several level, snapshot and retention ticks
    const after = await listing();
    assertEquals((await rep.stop()).code, 0);
    assertEquals(after, before);
    assert(JSON.parse(before).length > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

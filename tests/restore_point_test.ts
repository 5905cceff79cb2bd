/**
 * A point-in-time restore says which state it restored (TXID and time, in
 * text and with -json), and warns when that state may be older than asked
 * because retention removed the finer (L0) files after it.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { fileChecksum, Replicating, runWriter, strata } from "./helpers/strata.ts";

interface Listed {
  level: number;
  minTXID: string;
  maxTXID: string;
  createdAt: string;
}

async function listing(replica: string): Promise<Listed[]> {
  const ls = await strata(["ltx", "-level", "all", "-json", `file://${replica}`]);
  assertEquals(ls.code, 0, ls.stderr);
  return JSON.parse(ls.stdout);
}

/** `files` without the L0 files that some L1 file covers (what L0 retention leaves). */
function afterL0Retention(files: Listed[]): Listed[] {
  const l1s = files.filter((f) => f.level === 1);
  return files.filter((f) =>
    f.level !== 0 || !l1s.some((c) => c.minTXID <= f.minTXID && f.maxTXID <= c.maxTXID)
  );
}

/**
 * An L1 file with an L0 file strictly inside it (neither its first nor its
 * last input), with an older state left to restore once L0 retention ran.
 */
function l0InsideL1(files: Listed[]): { l1: Listed; l0: Listed } | null {
  const left = afterL0Retention(files);
  for (const l1 of files.filter((f) => f.level === 1)) {
    const l0 = files.find((f) =>
      f.level === 0 && f.minTXID > l1.minTXID && f.maxTXID < l1.maxTXID &&
      f.createdAt < l1.createdAt
    );
    if (l0 && left.some((f) => f.maxTXID < l1.minTXID && f.createdAt <= l0.createdAt)) {
      return { l1, l0 };
    }
  }
  return null;
}

/** What a `-timestamp t` restore should reach in `files`: the newest file created by then. */
function newestBy(files: Listed[], t: string): Listed {
  const by = files.filter((f) => Date.parse(f.createdAt) <= Date.parse(t));
  by.sort((a, b) => (a.maxTXID < b.maxTXID ? -1 : a.maxTXID > b.maxTXID ? 1 : 0));
  return by[by.length - 1];
}

Deno.test("a point-in-time restore reports the TXID and time it restored, and warns when retention made it older than asked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-restore-point-" });
  try {
    const db = join(dir, "app.db");
    const replica = join(dir, "replica");
    const marks = join(dir, "marks.jsonl");
    const cfg = join(dir, "strata.yml");
    // L1 every 2 s over L0 files every 100 ms; strata's own retention does not run here
    await Deno.writeTextFile(
      cfg,
      `levels:\n  - interval: 2s\nsnapshot:\n  interval: 1h\n  retention: 24h\n` +
        `l0-retention: 1h\nl0-retention-check-interval: 1h\n` +
        `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n`,
    );
    await runWriter(db, "more", 1, marks);
    const rep = new Replicating(["-config", cfg]);
    let found: { l1: Listed; l0: Listed } | null = null;
    try {
      for (let round = 2; !found; round++) {
        assert(round < 12, "no L1 file holding several L0 files");
        await runWriter(db, "more", round, marks);
        found = l0InsideL1(await listing(replica).catch(() => []));
      }
    } finally {
      const stopped = await rep.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
    }
    const { l1, l0 } = found;
    const t = l0.createdAt; // a moment inside the L1 file's span

    // with the L0 files there: exactly the state of that moment, not flagged
    const before = await listing(replica);
    const exact = join(dir, "exact.db");
    const r1 = await strata([
      "restore",
      "-json",
      "-no-progress",
      "-timestamp",
      t,
      "-o",
      exact,
      `file://${replica}`,
    ]);
    assertEquals(r1.code, 0, r1.stderr);
    const j1 = JSON.parse(r1.stdout);
    const want1 = newestBy(before, t);
    assertEquals(j1.txid, want1.maxTXID);
    assertEquals(j1.time, want1.createdAt);
    assertEquals(j1.requested.timestamp, t);
    assertEquals(j1.earlierThanAsked, false);
    assertEquals(j1.next, null);
    assertEquals(BigInt("0x" + j1.checksum), await fileChecksum(exact));
    assert(!/older than/.test(r1.stderr), r1.stderr);

    // retention removes the L0 files the L1 files cover
    const left = afterL0Retention(before);
    for (const f of before.filter((f) => !left.includes(f))) {
      await Deno.remove(join(replica, "ltx", "0", `${f.minTXID}-${f.maxTXID}.ltx`));
    }
    const after = await listing(replica);
    const want2 = newestBy(after, t);
    assert(want2.maxTXID < l0.maxTXID, "the older state is what is left");

    const older = join(dir, "older.db");
    const r2 = await strata([
      "restore",
      "-json",
      "-no-progress",
      "-timestamp",
      t,
      "-o",
      older,
      `file://${replica}`,
    ]);
    assertEquals(r2.code, 0, r2.stderr);
    const j2 = JSON.parse(r2.stdout);
    assertEquals(j2.txid, want2.maxTXID);
    assertEquals(j2.time, want2.createdAt);
    assert(Date.parse(j2.time) <= Date.parse(t));
    assertEquals(j2.earlierThanAsked, true);
    assertEquals(j2.next.level, 1);
    assertEquals(j2.next.txid, l1.maxTXID);
    assertEquals(j2.next.time, l1.createdAt);
    assertEquals(BigInt("0x" + j2.checksum), await fileChecksum(older));
    assertMatch(r2.stderr, new RegExp(`TXID ${want2.maxTXID} as of .* may be older than ${t}`));

    // -dry-run -json plans that same state
    const dry = await strata([
      "restore",
      "-dry-run",
      "-json",
      "-timestamp",
      t,
      "-o",
      join(dir, "d.db"),
      `file://${replica}`,
    ]);
    assertEquals(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assertEquals([plan.dryRun, plan.txid, plan.time], [true, want2.maxTXID, want2.createdAt]);
    assertEquals(plan.files.at(-1).maxTXID, want2.maxTXID);

    // the same in text: the TXID and the time of the state, and the warning
    const text = await strata([
      "restore",
      "-no-progress",
      "-timestamp",
      t,
      "-o",
      join(dir, "t.db"),
      `file://${replica}`,
    ]);
    assertEquals(text.code, 0, text.stderr);
    assertMatch(
      text.stdout,
      new RegExp(`to TXID ${want2.maxTXID} as of ${want2.createdAt.replaceAll(".", "\\.")}`),
    );
    assertMatch(
      text.stderr,
      /may be older than .*removed by retention.*next restorable point is TXID/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

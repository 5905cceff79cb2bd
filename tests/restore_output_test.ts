/**
 * The restore's output path, with real processes: several restores racing
 * for one output (init containers sharing a volume), `-force` over an
 * existing database whose restore fails or succeeds, and the modes of
 * restored files.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, fileChecksum, strata, writeAndReplicate } from "./helpers/strata.ts";
import { exists } from "../src/fsutil.ts";

/** A database written by a Python app and replicated by `strata replicate` into `replica`. */
async function replicated(dir: string): Promise<{ db: string; replica: string }> {
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const first = join(replica, "ltx", "9", "0000000000000001-0000000000000001.ltx");
  await writeAndReplicate(db, 7, `file://${replica}`, () => exists(first));
  return { db, replica };
}

function checksumIn(stdout: string): bigint {
  const m = /checksum ([0-9a-f]{16})/.exec(stdout);
  assert(m, `no checksum in ${stdout}`);
  return BigInt("0x" + m[1]);
}

async function leftovers(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) {
    if (/\.tmp$|\.replaced$|-journal$/.test(e.name)) out.push(e.name);
  }
  return out;
}

/**
 * Runs `n` restores of `replica` into `out` at once while watching `out`:
 * returns their outputs and every size seen at the output path.
 */
async function race(
  n: number,
  out: string,
  replica: string,
  extra: string[],
): Promise<{ runs: Awaited<ReturnType<typeof strata>>[]; sizes: Set<number> }> {
  const sizes = new Set<number>();
  let done = false;
  const watch = (async () => {
    while (!done) {
      const st = await Deno.stat(out).catch(() => null);
      if (st) sizes.add(st.size);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const runs = await Promise.all(
    Array.from(
      { length: n },
      () => strata(["restore", "-no-progress", ...extra, "-o", out, `file://${replica}`]),
    ),
  );
  done = true;
  await watch;
  return { runs, sizes };
}

Deno.test("concurrent restores on one output: one wins, the others fail by name (or skip with -if-db-not-exists); never a partial file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-restore-race-" });
  try {
    const { db, replica } = await replicated(dir);
    const want = await fileChecksum(db);
    const outDir = join(dir, "shared-volume");
    await Deno.mkdir(outDir);
    const out = join(outDir, "app.db");

    const plain = await race(6, out, replica, []);
    const winners = plain.runs.filter((r) => r.code === 0);
    assertEquals(winners.length, 1, plain.runs.map((r) => `${r.code}: ${r.stderr}`).join("\n"));
    for (const r of plain.runs.filter((r) => r.code !== 0)) {
      assert(r.stderr.includes(out), r.stderr);
      assertMatch(r.stderr, /exists|refusing to overwrite/);
    }
    assertEquals(await fileChecksum(out), want);
    assertEquals(checksumIn(winners[0].stdout), want);
    const size = (await Deno.stat(out)).size;
    assertEquals([...plain.sizes], [size], "the output was seen incomplete");
    assertEquals(await leftovers(outDir), []);

    await Deno.remove(out);
    const skip = await race(6, out, replica, ["-if-db-not-exists"]);
    for (const r of skip.runs) assertEquals(r.code, 0, r.stderr);
    assertEquals(await fileChecksum(out), want);
    assertEquals((await digestOf(out)).integrity, "ok");
    assertEquals([...skip.sizes], [size], "the output was seen incomplete");
    assertEquals(await leftovers(outDir), []);
    const restored = skip.runs.filter((r) => /restored .* to TXID/.test(r.stdout));
    assertEquals(restored.length, 1, skip.runs.map((r) => r.stdout).join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A database in WAL mode whose app died with committed frames still in its -wal. */
async function databaseWithWal(path: string): Promise<void> {
  const code = `
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA wal_autocheckpoint=0")
con.execute("CREATE TABLE old (id INTEGER PRIMARY KEY, v TEXT)")
for i in range(200):
    con.execute("INSERT INTO old (v) VALUES (?)", ("old-%d" % i,))
os._exit(0)  # no checkpoint at close: the -wal stays
`;
  const r = await new Deno.Command("python3", { args: ["-c", code, path] }).output();
  assertEquals(r.code, 0);
  assert(await exists(`${path}-wal`), "no -wal left");
}

Deno.test("restore -force: the old database is untouched when the restore fails, replaced (mode kept, old WAL gone) when it succeeds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-restore-force-" });
  try {
    const { db, replica } = await replicated(dir);
    // a damaged copy of the replica: a flipped byte in the middle of its only full copy
    const broken = join(dir, "broken");
    await new Deno.Command("cp", { args: ["-r", replica, broken] }).output();
    const snap = join(broken, "ltx", "9", "0000000000000001-0000000000000001.ltx");
    const bytes = await Deno.readFile(snap);
    bytes[Math.floor(bytes.length / 2)] ^= 0x55;
    await Deno.writeFile(snap, bytes);

    const out = join(dir, "existing.db");
    await databaseWithWal(out);
    await Deno.chmod(out, 0o640);
    const before = await Deno.readFile(out);
    const walBefore = await Deno.readFile(`${out}-wal`);

    const failed = await strata([
      "restore",
      "-no-progress",
      "-force",
      "-o",
      out,
      `file://${broken}`,
    ]);
    assert(failed.code !== 0, "a restore of a damaged replica succeeded");
    assertMatch(failed.stderr, /0000000000000001-0000000000000001|checksum/);
    assertEquals(await Deno.readFile(out), before, "the old database changed");
    assertEquals(await Deno.readFile(`${out}-wal`), walBefore, "the old WAL changed");
    assertEquals(await leftovers(dir), []);

    const ok = await strata(["restore", "-no-progress", "-force", "-o", out, `file://${replica}`]);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals((await Deno.stat(out)).mode! & 0o777, 0o640);
    assert(!(await exists(`${out}-wal`)), "the old WAL is still beside the new database");
    assertEquals(await leftovers(dir), []);
    assertEquals(await fileChecksum(out), await fileChecksum(db));
    const d = await digestOf(out); // opening it would apply an old WAL: it must see the new data
    assertEquals(d.digest, (await digestOf(db)).digest);
    assertEquals(d.integrity, "ok");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restored database is 0600 unless it replaces one (then it keeps that mode)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-restore-mode-" });
  try {
    const { replica } = await replicated(dir);
    const out = join(dir, "fresh.db");
    const r = await strata(["restore", "-no-progress", "-o", out, `file://${replica}`]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await Deno.stat(out)).mode! & 0o777, 0o600);
    await Deno.chmod(out, 0o644);
    const again = await strata([
      "restore",
      "-no-progress",
      "-force",
      "-o",
      out,
      `file://${replica}`,
    ]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals((await Deno.stat(out)).mode! & 0o777, 0o644);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

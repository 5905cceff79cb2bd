/**
 * The database file is the one strata captures, and strata knows it:
 * - replaced at its path (`mv other.db app.db`), or deleted and created
 *   again, while `replicate` runs: noticed within a monitor tick, said loudly,
 *   the new file captured in full and followed by a snapshot; the replica
 *   restores the new file's rows exactly;
 * - deleted and not yet back: said once, capture resumes when a file is back;
 * - the app wrote while strata was stopped and closed (its WAL checkpointed
 *   and deleted): the same file, so no false "replaced" warning and no new
 *   snapshot; replaced while stopped: a new lineage, as before;
 * - a second `replicate` on the same database is refused (its meta directory
 *   is locked) while the first goes on unharmed;
 * - a start-up failure says why, with no bogus "final sync" error, and gives
 *   the replica's lease back.
 * strata and the app run as separate processes.
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, Replicating, strata } from "./helpers/strata.ts";
import { App, createAppDb, waitForReplicaEqual } from "./helpers/live.ts";
import { restoreTarget } from "../src/restore/mod.ts";
import { python } from "./helpers/ops.ts";

async function setup(prefix: string) {
  const dir = await Deno.makeTempDir({ prefix });
  const db = join(dir, "app.db");
  const rep = join(dir, "replica");
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: file
        path: ${rep}
        sync-interval: 100ms
`,
  );
  return { dir, db, rep, cfg, client: new FileReplicaClient(rep) };
}

/** Removes the database and its WAL and index, as a careless replacement would. */
async function removeDb(db: string): Promise<void> {
  for (const p of [db, `${db}-wal`, `${db}-shm`]) await Deno.remove(p).catch(() => {});
}

/** Snapshot files (level 9) in the replica (the first full copy is the first one). */
async function snapshots(client: FileReplicaClient): Promise<number> {
  return (await client.listFiles(9)).length;
}

/** Restores the replica's latest state and checks it equals the database's rows. */
async function assertRestoresTo(client: FileReplicaClient, db: string, dir: string) {
  const out = join(dir, `check-${crypto.randomUUID().slice(0, 8)}.db`);
  await restoreTarget(client, {}, out, { integrityCheck: "full" });
  assertEquals((await digestOf(out)).digest, (await digestOf(db)).digest, "restored rows");
}

Deno.test("database replaced by mv, then deleted and created again, while replicating: each new file is captured in full and restored exactly", async () => {
  const { dir, db, cfg, client } = await setup("strata-replaced-");
  await createAppDb(db);
  let app = new App(db, 0.02);
  const proc = new Replicating(["-config", cfg]);
  try {
    await proc.waitForLog();
    await app.stop();
    await waitForReplicaEqual(client, db, dir);

    // 1. another database moved over it (its WAL and index moved away with it, as they must be)
    const other = join(dir, "other.db");
    await createAppDb(other);
    app = new App(other, 0.01);
    await new Promise((r) => setTimeout(r, 500));
    await app.stop();
    let mark = proc.log.length;
    await removeDb(db);
    await Deno.rename(other, db);
    app = new App(db, 0.02);
    await proc.waitForLog(/ERROR database file replaced while replicating/, 30_000, mark);
    await proc.waitForLog(
      /uploading snapshot .*reason="new lineage: the database file was replaced/,
      30_000,
      mark,
    );
    await app.stop();
    await waitForReplicaEqual(client, db, dir);

    // 2. deleted, and gone for a while: said once
    mark = proc.log.length;
    await removeDb(db);
    await proc.waitForLog(/ERROR the database file is gone from its path/, 30_000, mark);
    await new Promise((r) => setTimeout(r, 500));
    assertEquals(proc.log.slice(mark).match(/is gone from its path/g)?.length, 1, "said once");

    // 3. created again under the same name
    await createAppDb(db);
    app = new App(db, 0.02);
    await proc.waitForLog(/ERROR database file replaced while replicating/, 30_000, mark);
    await new Promise((r) => setTimeout(r, 500));
    await app.stop();
    await waitForReplicaEqual(client, db, dir);

    const out = await proc.stop();
    assertEquals(out.code, 0, out.stderr);
    await assertRestoresTo(client, db, dir);
  } catch (e) {
    const names = async (d: string) => {
      const out: string[] = [];
      for await (const f of Deno.readDir(d)) out.push(f.name);
      return out.sort().join(" ");
    };
    console.error(`strata's log:\n${proc.log}`);
    console.error(
      `local L0: ${await names(join(dir, ".app.db-strata", "ltx", "0")).catch(String)}`,
    );
    console.error(`replica L0: ${await names(join(dir, "replica", "ltx", "0")).catch(String)}`);
    console.error(`status: ${(await strata(["status", "-config", cfg])).stdout}`);
    const probe = join(dir, "probe.db");
    await restoreTarget(client, {}, probe, { integrityCheck: "none" }).catch(() => {});
    const q = `import sqlite3,sys
for p in sys.argv[1:]:
    c = sqlite3.connect(p)
    print(p, c.execute("select count(*), max(id), sum(n) from items").fetchone(), c.execute("pragma page_count").fetchone(), c.execute("pragma integrity_check").fetchone())`;
    console.error(await python(q, db, probe).catch(String));
    throw e;
  } finally {
    await app.stop();
    await proc.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restart after the app wrote while strata was stopped: no false 'replaced', no new snapshot; replaced while stopped: a new lineage", async () => {
  const { dir, db, cfg, client } = await setup("strata-restart-");
  await createAppDb(db);
  try {
    let proc = new Replicating(["-config", cfg]);
    await proc.waitForLog();
    await waitForReplicaEqual(client, db, dir);
    let out = await proc.stop();
    assertEquals(out.code, 0, out.stderr);
    assertEquals(await snapshots(client), 1);

    // the app runs and exits while strata is stopped: SQLite checkpoints and deletes its WAL
    await python(
      `import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
for n in range(300):
    con.execute("INSERT INTO items (name, body, n) VALUES ('stopped', randomblob(300), ?)", (n,))
con.close()`,
      db,
    );
    await Deno.stat(`${db}-wal`).then(
      () => assert(false, "the app's clean exit should have removed its WAL"),
      () => {},
    );
    proc = new Replicating(["-config", cfg]);
    await proc.waitForLog();
    await waitForReplicaEqual(client, db, dir);
    out = await proc.stop();
    assertEquals(out.code, 0, out.stderr);
    assertMatch(
      out.stderr,
      /INFO capturing a full copy .*changed while strata was stopped.*same database file/,
    );
    assert(!/replaced|new lineage|WARN|ERROR/.test(out.stderr), out.stderr);
    assertEquals(await snapshots(client), 1, "no new snapshot for the same database file");
    await assertRestoresTo(client, db, dir);

    // a file copied over it in place (the same inode): a chained full copy, restored exactly
    const older = join(dir, "older.db");
    await createAppDb(older);
    const inode = (await Deno.stat(db)).ino;
    await Deno.copyFile(older, db);
    assertEquals((await Deno.stat(db)).ino, inode, "copied in place");
    proc = new Replicating(["-config", cfg]);
    await proc.waitForLog();
    await waitForReplicaEqual(client, db, dir);
    out = await proc.stop();
    assertEquals(out.code, 0, out.stderr);
    assertMatch(out.stderr, /INFO capturing a full copy .*copied over it in place/);
    await assertRestoresTo(client, db, dir);

    // another file moved in while strata was stopped: a real replacement
    const other = join(dir, "other.db");
    await createAppDb(other);
    await removeDb(db);
    await Deno.rename(other, db);
    proc = new Replicating(["-config", cfg]);
    await proc.waitForLog();
    await waitForReplicaEqual(client, db, dir);
    await proc.waitForLog(/uploading snapshot .*new lineage/);
    out = await proc.stop();
    assertEquals(out.code, 0, out.stderr);
    assertMatch(out.stderr, /WARN capturing a full copy .*replaced/);
    assertEquals(await snapshots(client), 2);
    await assertRestoresTo(client, db, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second replicate on the same database is refused by name; the first goes on", async () => {
  const { dir, db, cfg, rep, client } = await setup("strata-twoprocs-");
  await createAppDb(db);
  const app = new App(db, 0.02);
  const first = new Replicating(["-config", cfg]);
  try {
    await first.waitForLog();
    // a second process, another replica: its captures would interleave with the first's
    const proc2 = new Replicating([db, `file://${rep}-b`]);
    await proc2.waitForLog(/cannot use database|INFO replicating db=/, 60_000);
    const second = await proc2.stop();
    assertEquals(second.code, 1, second.stderr);
    assertMatch(
      second.stderr,
      new RegExp(`another strata replicate process \\(pid ${first.pid}\\) is capturing it`),
    );
    assertMatch(second.stderr, /\.app\.db-strata/);
    assert(!/final sync/.test(second.stderr), second.stderr);
    await Deno.stat(join(`${rep}-b`, "lock.json")).then(
      () => assert(false, "the refused process kept its replica lease"),
      () => {},
    );
    await app.stop();
    await waitForReplicaEqual(client, db, dir);
    const out = await first.stop();
    assertEquals(out.code, 0, out.stderr);
    assert(!/ERROR|diverged/.test(out.stderr), out.stderr);
    await assertRestoresTo(client, db, dir);
  } finally {
    await app.stop();
    await first.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a start-up failure names the database and the reason, and nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-startfail-" });
  try {
    const rep = join(dir, "replica");
    const missing = await strata(["replicate", join(dir, "nope.db"), `file://${rep}`]);
    assertEquals(missing.code, 1, missing.stderr);
    assertMatch(missing.stderr, /cannot use database .*nope\.db: no such file/);
    assert(!/final sync|prepare/.test(missing.stderr), missing.stderr);
    await Deno.writeTextFile(join(dir, "bad.db"), "not a database, not at all, no");
    const bad = await strata(["replicate", join(dir, "bad.db"), `file://${rep}`]);
    assertEquals(bad.code, 1, bad.stderr);
    assertMatch(bad.stderr, /bad\.db: not a SQLite database/);
    assert(!/final sync|prepare|taking over/.test(bad.stderr), bad.stderr);
    await Deno.stat(join(rep, "lock.json")).then(
      () => assert(false, "the lease was not given back"),
      () => {},
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

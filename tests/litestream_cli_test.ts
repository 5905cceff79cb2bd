/**
 * Litestream's replicate flags work in strata (issue 18): -once (with
 * -force-snapshot and -enforce-retention) and -restore-if-db-not-exists (and
 * its dbs key). The app writes from its own process (python3).
 */

import { join } from "node:path";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, strata } from "./helpers/strata.ts";
import { createAppDb } from "./helpers/live.ts";
import { python } from "./helpers/ops.ts";

async function addRows(db: string, n: number, tag: string): Promise<void> {
  await python(
    `import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for i in range(int(sys.argv[2])):
    with con:
        con.execute("INSERT INTO items (name, body, n) VALUES (?, randomblob(200), ?)", (sys.argv[3], i))`,
    db,
    String(n),
    tag,
  );
}

async function restoredDigest(url: string, dir: string): Promise<string> {
  const out = join(dir, `r-${crypto.randomUUID().slice(0, 8)}.db`);
  const r = await strata(["restore", "-no-progress", "-o", out, url]);
  assertEquals(r.code, 0, r.stderr);
  return (await digestOf(out)).digest;
}

Deno.test("replicate -once uploads what is committed and exits; -force-snapshot adds a snapshot; misuse is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-once-" });
  try {
    const db = join(dir, "app.db");
    await createAppDb(db);
    await addRows(db, 50, "a");
    const rep = join(dir, "replica");
    const url = `file://${rep}`;
    let r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);

    await addRows(db, 30, "b");
    const snaps = (await new FileReplicaClient(rep).listFiles(SNAPSHOT_LEVEL)).length;
    r = await strata(["replicate", "-once", "-force-snapshot", "-enforce-retention", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);
    const after = await new FileReplicaClient(rep).listFiles(SNAPSHOT_LEVEL);
    assertEquals(after.length, snaps + 1, "one more snapshot");

    r = await strata(["replicate", "-force-snapshot", db, url]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /-force-snapshot goes with -once/);
    r = await strata(["replicate", "-once", "-exec", "true", db, url]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /-once and -exec/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-restore-if-db-not-exists (flag or dbs key): a missing database is restored, then its replica continues", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-rine-" });
  try {
    const db = join(dir, "app.db");
    await createAppDb(db);
    await addRows(db, 40, "before");
    const rep = join(dir, "replica");
    const url = `file://${rep}`;
    let r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    const want = (await digestOf(db)).digest;

    // the machine is lost: a new one starts with no database and no meta directory
    for (const p of [db, `${db}-wal`, `${db}-shm`]) await Deno.remove(p).catch(() => {});
    await Deno.remove(join(dir, ".app.db-strata"), { recursive: true });
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `dbs:\n  - path: ${db}\n    restore-if-db-not-exists: true\n    replicas:\n      - url: ${url}\n`,
    );
    r = await strata(["replicate", "-once", "-config", cfg]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /restored the missing database before replicating it/);
    assertEquals((await digestOf(db)).digest, want, "the database is the replica's state");

    // the app goes on; the same replica takes its commits (one history, no divergence)
    await addRows(db, 10, "after");
    r = await strata(["replicate", "-once", "-restore-if-db-not-exists", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assert(!/diverged|restored the missing/.test(r.stderr), r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);

    // a replica with no backup: the database is left to the app
    const other = join(dir, "new.db");
    r = await strata([
      "replicate",
      "-once",
      "-restore-if-db-not-exists",
      other,
      `file://${join(dir, "empty")}`,
    ]);
    assertMatch(r.stderr, /its replica has no backup/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

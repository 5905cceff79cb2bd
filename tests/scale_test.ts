/**
 * Many databases in one process (issue 16): 200 databases under one
 * directory, replicated by one `strata replicate` while an app (its own
 * process) writes to every one of them; after a clean stop each replica
 * restores exactly its database's rows. Start-up time and the replicator's
 * RSS are printed (benchmarks, not assertions, judge them).
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { restoreTarget } from "../src/restore/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { python, waitFor } from "./helpers/ops.ts";
import { Replicating } from "./helpers/strata.ts";

const N = 200;

/** Creates (phase "create") or adds rows to (phase "write") databases db-0.db … db-(N-1).db. */
const APP = `
import sqlite3, sys
data, phase, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    con = sqlite3.connect("%s/db-%d.db" % (data, i), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    if phase == "create":
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for k in range(1 + i % 5):
        con.execute("INSERT INTO t (v) VALUES (?)", ("%s-%d-%d-" % (phase, i, k) + "x" * (i * 7 % 900),))
    con.close()
`;

function rowsOf(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare("SELECT id, v FROM t ORDER BY id").all();
    return JSON.stringify(rows);
  } finally {
    db.close();
  }
}

Deno.test(`${N} databases in one process: every one replicated while an app writes, each restored exactly`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-scale-" });
  const data = join(dir, "data");
  const replica = join(dir, "replica");
  const cfg = join(dir, "strata.yml");
  await Deno.mkdir(data);
  await Deno.writeTextFile(
    cfg,
    `dbs:\n  - dir: ${data}\n    pattern: "*.db"\n    replicas:\n      - url: file://${replica}\n        sync-interval: 1s\n`,
  );
  let rep: Replicating | null = null;
  try {
    await python(APP, data, "create", String(N));
    const t0 = Date.now();
    rep = new Replicating(["-config", cfg]);
    await waitFor(
      `all ${N} databases replicating`,
      () => Promise.resolve((rep!.log.match(/INFO replicating db=/g) ?? []).length >= N),
      180,
    );
    const started = Date.now() - t0;
    await python(APP, data, "write", String(N));
    const rss = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${rep.pid}/status`))?.[1];
    const out = await rep.stop();
    rep = null;
    assertEquals(out.code, 0, out.stderr.slice(-3000));
    console.log(`${N} databases: all replicating after ${started} ms, RSS ${rss} kB`);

    for (let i = 0; i < N; i++) {
      const name = `db-${i}.db`;
      const restored = join(dir, `restored-${i}.db`);
      await restoreTarget(new FileReplicaClient(join(replica, name)), {}, restored, {
        integrityCheck: "quick",
      });
      const want = rowsOf(join(data, name));
      assert(want.includes(`write-${i}-0-`), `${name} holds the app's second writes`);
      assertEquals(rowsOf(restored), want, name);
      await Deno.remove(restored);
    }
  } finally {
    if (rep) await rep.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

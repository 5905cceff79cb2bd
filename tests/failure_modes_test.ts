/**
 * Failure modes with the app (sqlite3 processes) writing on: a replica that
 * is unreachable for a while (local files stay bounded, the problem is
 * reported, strata catches up), and a meta directory that cannot be written
 * (the app's own checkpoints are not held back; strata recovers with a full
 * copy chained to the last file it wrote). Replication runs in-process so the
 * test can read its state.
 */

import { join } from "node:path";
import { DbReplication } from "../src/replicate/mod.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { restoreTarget } from "../src/restore/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { digestOf } from "./helpers/strata.ts";
import { checkL0Chain } from "./helpers/chain.ts";

async function sql(db: string, script: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: [db, script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`sqlite3: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

const INSERT = "PRAGMA busy_timeout=5000; INSERT INTO items (name, body, n) " +
  "VALUES ('x', randomblob(3000), 1);";

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "strata-failure-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  await sql(
    db,
    "PRAGMA journal_mode=WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, name, body, n); CREATE TABLE log (id INTEGER PRIMARY KEY);",
  );
  const rep = new DbReplication({
    dbPath: db,
    monitorIntervalMs: 20,
    replicas: [{ client: new FileReplicaClient(replica), syncIntervalMs: 50 }],
    compaction: {
      levelIntervalsMs: [],
      snapshotIntervalMs: 0,
      snapshotRetentionMs: 0,
      l0RetentionMs: 0,
      l0RetentionCheckIntervalMs: 0,
      retentionEnabled: false,
    },
    maxPendingFiles: 8,
  });
  return { dir, db, replica, rep };
}

async function finish(s: Awaited<ReturnType<typeof setup>>): Promise<void> {
  await s.rep.stop();
  const client = new FileReplicaClient(s.replica);
  await checkL0Chain(client);
  const out = join(s.dir, "restored.db");
  await restoreTarget(client, {}, out, { integrityCheck: "full" });
  const got = await digestOf(out);
  assertEquals(got.integrity, "ok");
  assertEquals(got.digest, (await digestOf(s.db)).digest);
}

Deno.test("a replica unreachable for a while: reported, local files bounded, caught up afterwards", async () => {
  const s = await setup();
  const r = s.rep.replicators[0];
  try {
    await s.rep.start();
    for (let i = 0; i < 3; i++) await sql(s.db, INSERT);
    await waitFor("the first uploads", () => r.replicaTXID === s.rep.monitor.position.txid);

    const before = r.replicaTXID!;
    // the replica's directory is replaced by a file: every upload fails
    await Deno.rename(s.replica, s.replica + ".away");
    await Deno.writeTextFile(s.replica, "not a directory");
    for (let i = 0; i < 40; i++) {
      await sql(s.db, INSERT);
      await new Promise((res) => setTimeout(res, 25));
    }
    await waitFor("the failure to be reported", () => r.lastError !== null);
    const local = await s.rep.monitor.localFiles();
    assert(s.rep.monitor.position.txid > before + 20n, "captures went on");
    // 40 captures, merged whenever 8 are pending (after each sync attempt)
    assert(local.length <= 16, `${local.length} local files kept (bound 8)`);

    await Deno.remove(s.replica);
    await Deno.rename(s.replica + ".away", s.replica);
    await waitFor(
      "the replica to catch up",
      () => r.lastError === null && r.replicaTXID === s.rep.monitor.position.txid,
    );
    await finish(s);
  } finally {
    await s.rep.stop().catch(() => {});
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("a meta directory that cannot be written: the app's checkpoints go on, strata recovers with a chained full copy", async () => {
  const s = await setup();
  const m = s.rep.monitor;
  try {
    await s.rep.start();
    for (let i = 0; i < 3; i++) await sql(s.db, INSERT);
    await waitFor("the first uploads", () => s.rep.replicators[0].replicaTXID === m.position.txid);

    const ltx = m.ltxDir;
    await Deno.rename(ltx, ltx + ".away");
    await Deno.writeTextFile(ltx, "not a directory");
    await sql(s.db, INSERT);
    await waitFor("the problem to be reported", () => m.problem !== null);
    assert(m.problem!.includes("cannot write local file"), m.problem!);
    for (let i = 0; i < 10; i++) await sql(s.db, INSERT);
    // strata released its read transaction: the app's own TRUNCATE checkpoint completes
    const ck = await sql(s.db, "PRAGMA busy_timeout=5000; PRAGMA wal_checkpoint(TRUNCATE);");
    assert(ck.split("\n").pop()!.startsWith("0|"), `the app's checkpoint was held back: ${ck}`);

    await Deno.remove(ltx);
    await Deno.rename(ltx + ".away", ltx);
    await sql(s.db, INSERT);
    await waitFor("recovery", () => m.problem === null, 40_000);
    await waitFor("the replica", () => s.rep.replicators[0].replicaTXID === m.position.txid);
    await finish(s);
  } finally {
    await s.rep.stop().catch(() => {});
    await Deno.remove(s.dir, { recursive: true });
  }
});

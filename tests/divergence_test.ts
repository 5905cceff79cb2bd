/**
 * Divergence: a database changed behind strata's back, and a replica that
 * does not continue the local history. The app is the sqlite3 command line
 * (its own process); strata runs as `strata replicate`.
 */

import { join } from "node:path";
import { FileReplicaClient, type ReplicaFile } from "../src/storage/mod.ts";
import { listAllFiles, planRestore, restoreTarget } from "../src/restore/mod.ts";
import { formatTXID } from "../src/ltx/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { digestOf, Replicating, strata } from "./helpers/strata.ts";
import { checkL0Chain } from "./helpers/chain.ts";
import { Monitor } from "../src/capture/mod.ts";
import { Replicator } from "../src/replicate/replicator.ts";

async function sql(db: string, script: string): Promise<string> {
  const r = await new Deno.Command("sqlite3", {
    args: [db],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = r.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await r.output();
  if (out.code !== 0) throw new Error(`sqlite3: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** `n` transactions, each inserting a row of about 1 KiB. */
function inserts(tag: string, n: number): string {
  let s = "PRAGMA busy_timeout=10000;\n";
  for (let i = 0; i < n; i++) {
    s += `INSERT INTO items (name, body, n) VALUES ('${tag}', randomblob(1000), ${i});\n`;
  }
  return s;
}

interface Setup {
  dir: string;
  db: string;
  replica: string;
  config: string;
  client: FileReplicaClient;
}

async function setup(): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: "strata-divergence-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const config = join(dir, "strata.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${db}\n    monitor-interval: 50ms\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n`,
  );
  await sql(
    db,
    "PRAGMA journal_mode=WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, name, body, n); CREATE TABLE log (id INTEGER PRIMARY KEY);",
  );
  return { dir, db, replica, config, client: new FileReplicaClient(replica) };
}

function names(files: ReplicaFile[]): string[] {
  return files.map((f) => `${f.level}/${formatTXID(f.minTXID)}-${formatTXID(f.maxTXID)}`).sort();
}

function maxTXID(files: ReplicaFile[]): bigint {
  return files.reduce((m, f) => (f.maxTXID > m ? f.maxTXID : m), 0n);
}

async function restoredDigest(s: Setup, txid?: bigint): Promise<string> {
  const out = join(s.dir, `restored-${crypto.randomUUID().slice(0, 8)}.db`);
  await restoreTarget(s.client, txid === undefined ? {} : { txid }, out, {
    integrityCheck: "full",
  });
  const d = await digestOf(out);
  assertEquals(d.integrity, "ok");
  return d.digest;
}

/** Runs strata until `during` is done, then stops it cleanly; returns its log. */
async function replicateWhile(
  s: Setup,
  during: () => Promise<unknown>,
  extra: string[] = [],
): Promise<string> {
  const p = new Replicating(["-config", s.config, ...extra]);
  let out;
  try {
    await p.waitForLog();
    await during();
  } finally {
    out = await p.stop();
  }
  assertEquals(out.code, 0, out.stderr);
  return out.stderr;
}

Deno.test("an older backup restored over the live database while strata is stopped: detected, new snapshot, histories kept apart", async () => {
  const s = await setup();
  try {
    await sql(s.db, inserts("a", 20));
    const backup = join(s.dir, "older-backup.db");
    await replicateWhile(s, async () => {
      await sql(s.db, `.backup ${backup}`);
      await sql(s.db, inserts("b", 30));
    });
    const first = await listAllFiles(s.client);
    const t1 = maxTXID(first);
    const digestB = (await digestOf(s.db)).digest;
    assertEquals(await restoredDigest(s), digestB);

    // the operator restores the older backup over the live database (a new file moved in, as
    // `strata restore -force` does; a copy in place is the same file, see db_file_identity_test)
    for (const x of ["-wal", "-shm"]) await Deno.remove(s.db + x).catch(() => {});
    await Deno.copyFile(backup, `${s.db}.new`);
    await Deno.rename(`${s.db}.new`, s.db);
    const log = await replicateWhile(s, () => sql(s.db, inserts("c", 10)));
    assert(log.includes("changed while strata was stopped"), log);
    assert(/snapshot.*new lineage: the database was changed/.test(log), log);
    const digestC = (await digestOf(s.db)).digest;

    const after = await listAllFiles(s.client);
    for (const n of names(first).filter((n) => n.startsWith("0/") || n.startsWith("9/"))) {
      assert(names(after).includes(n), `${n} was deleted`);
    }
    // latest: from the new snapshot, never through the older history
    const plan = planRestore(after, {}, s.replica);
    assertEquals(plan.files[0].minTXID, 1n, "a snapshot");
    assert(plan.files[0].maxTXID > t1, "the latest restore starts at the new snapshot");
    assertEquals(await restoredDigest(s), digestC);
    // the history before the replacement is intact
    assertEquals(await restoredDigest(s, t1), digestB);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("a replica that does not continue the local history: uploads stop, status says so, nothing deleted; -new-lineage continues with a snapshot", async () => {
  const s = await setup();
  try {
    await replicateWhile(s, () => sql(s.db, inserts("a", 20)));
    const first = await listAllFiles(s.client);
    const t1 = maxTXID(first);
    const digestA = (await digestOf(s.db)).digest;

    // the local position is lost (meta directory removed); the app writes on
    await Deno.remove(join(s.dir, ".app.db-strata"), { recursive: true });
    await sql(s.db, inserts("b", 5));
    let status = "";
    const log = await replicateWhile(s, async () => {
      await sql(s.db, inserts("c", 5));
      await new Promise((r) => setTimeout(r, 500));
      const st = await strata(["status", "-config", s.config]);
      assertEquals(st.code, 0, st.stderr);
      status = st.stdout;
    });
    assert(log.includes("replica diverged from the local database"), log);
    assert(/local=0000000000000001\/\S+ replicaPosition=/.test(log), log);
    assert(status.includes("DIVERGED"), status);
    assertEquals(names(await listAllFiles(s.client)), names(first), "the replica is untouched");

    // the user chooses to continue: a new lineage past the replica's newest TXID
    const log2 = await replicateWhile(s, () => sql(s.db, inserts("d", 5)), ["-new-lineage"]);
    assert(log2.includes("new lineage after divergence"), log2);
    const after = await listAllFiles(s.client);
    for (const n of names(first)) assert(names(after).includes(n), `${n} was deleted`);
    const plan = planRestore(after, {}, s.replica);
    const shown = `plan ${
      plan.files.map((f) => `L${f.level}:${f.minTXID}-${f.maxTXID}`).join(" ")
    } (old lineage to ${t1}); replica ${names(after).join(" ")}\n${log2}`;
    assertEquals(plan.files[0].minTXID, 1n, `a snapshot: ${shown}`);
    assert(plan.files[0].maxTXID > t1, `the new lineage's snapshot first: ${shown}`);
    assertEquals(await restoredDigest(s), (await digestOf(s.db)).digest);
    assertEquals(await restoredDigest(s, t1), digestA);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("a lost meta directory with the database unchanged: the replica's history simply continues", async () => {
  const s = await setup();
  try {
    await replicateWhile(s, () => sql(s.db, inserts("a", 20)));
    const t1 = maxTXID(await listAllFiles(s.client));
    await Deno.remove(join(s.dir, ".app.db-strata"), { recursive: true });
    const log = await replicateWhile(s, () => sql(s.db, inserts("b", 10)));
    assert(log.includes("equals the replica's newest state"), log);
    assert(!log.includes("diverged"), log);
    // pre/post checksums chain across the restart (the app's new rows are after the full copy
    // that continues the replica, or in it when they were captured before the first sync)
    const chain = await checkL0Chain(s.client);
    assert(chain.maxTXID > t1);
    assertEquals(await restoredDigest(s), (await digestOf(s.db)).digest);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("a lost meta directory, and the app commits before the first sync: the history still continues (no false divergence)", async () => {
  // the app's commits bring the new local numbering to the replica's newest TXID, then past it
  for (const past of [0n, 2n]) {
    const s = await setup();
    try {
      await replicateWhile(s, () => sql(s.db, inserts("a", 5)));
      const before = maxTXID(await listAllFiles(s.client));
      const old = (await digestOf(s.db)).digest;
      await Deno.remove(join(s.dir, ".app.db-strata"), { recursive: true });
      // strata starts again: a full copy of the unchanged database is local TXID 1
      const monitor = new Monitor({ dbPath: s.db });
      await monitor.open();
      try {
        for (let i = 1n; i < before + past; i++) {
          await sql(s.db, inserts("b", 1));
          await monitor.capture();
        }
        assertEquals(monitor.position.txid, before + past);
        const rep = new Replicator(monitor, s.client, { syncIntervalMs: 100 });
        await rep.sync();
        assertEquals(rep.divergence, null, "the database passed through the replica's state");
        assertEquals(rep.lastError, null);
        assertEquals(rep.replicaTXID, monitor.position.txid, "the replica caught up");
      } finally {
        await monitor.close();
      }
      assert(maxTXID(await listAllFiles(s.client)) > before + past);
      assertEquals(await restoredDigest(s), (await digestOf(s.db)).digest);
      assertEquals(await restoredDigest(s, before), old, "the old history is intact");
    } finally {
      await Deno.remove(s.dir, { recursive: true });
    }
  }
});

/**
 * Crash safety: `strata replicate` killed with SIGKILL at random moments
 * while an app writes heavily, restarted each time; and an app killed in the
 * middle of a transaction. The app is a Python process.
 */

import { join } from "node:path";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { listAllFiles, restoreTarget } from "../src/restore/mod.ts";
import { LtxDecoder } from "../src/ltx/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { digestOf, Replicating } from "./helpers/strata.ts";
import { checkL0Chain } from "./helpers/chain.ts";
import { PROJECT_ROOT } from "./helpers/vectors.ts";
import { rng } from "./helpers/pages.ts";

/** Writes until STOP_FILE exists: small and large transactions, deletes, its own checkpoints. */
const BUSY_WRITER = `
import os, random, sqlite3, sys, time
db, stop = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
con = sqlite3.connect(db, isolation_level=None, timeout=30)
con.execute("PRAGMA busy_timeout=30000")
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)")
con.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at REAL, what TEXT)")
n = 0
while not os.path.exists(stop):
    con.execute("BEGIN")
    k = 40 if n % 25 == 0 else 1
    for _ in range(k):
        con.execute("INSERT INTO items (name, body, n) VALUES (?, ?, ?)", ("i%d" % n, rnd.randbytes(rnd.randrange(50, 4000)), n))
    if n % 7 == 0:
        con.execute("DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 5)")
    con.execute("INSERT INTO log (at, what) VALUES (?, ?)", (time.time(), "tx"))
    con.execute("COMMIT")
    n += 1
    if n % 400 == 0:
        con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    time.sleep(0.001)
print(n)
`;

const MAIN = join(PROJECT_ROOT, "main.ts");

/** Starts `strata replicate`, waits until it logs `after` (or not at all), sleeps, SIGKILLs it. */
async function startAndKill(args: string[], after: string | null, delayMs: number): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "replicate", ...args],
    env: { NO_COLOR: "1", LOG_LEVEL: "info" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const draining = (async () => {
    let buf = "";
    let seen = after === null;
    const seenIt = Promise.withResolvers<void>();
    if (seen) seenIt.resolve();
    (async () => {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!seen) {
          buf += value;
          if (buf.includes(after!)) {
            seen = true;
            seenIt.resolve();
          }
        }
      }
      seenIt.resolve();
    })();
    await seenIt.promise;
  })();
  await draining;
  await new Promise((r) => setTimeout(r, delayMs));
  try {
    child.kill("SIGKILL");
  } catch { /* exited */ }
  await child.status;
}

Deno.test("kill -9 of strata replicate 50 times during heavy writes: exact restore, integrity ok, no TXID gap, every checksum chains", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-kill9-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const stop = join(dir, "stop");
  const config = join(dir, "strata.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${db}\n    monitor-interval: 20ms\n    min-checkpoint-page-count: 200\n    replicas:\n      - url: file://${replica}\n        sync-interval: 50ms\n`,
  );
  const writer = new Deno.Command("python3", {
    args: ["-c", BUSY_WRITER, db, stop],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const rand = rng(2026);
  try {
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 52; i++) {
      // mostly after it started replicating (random moments of capture,
      // upload, checkpoint, snapshot), sometimes while it starts up
      const after = rand() < 0.8 ? "replicating" : null;
      await startAndKill(["-config", config], after, 10 + Math.floor(rand() * 300));
    }
    await Deno.writeTextFile(stop, "");
    const w = await writer.output();
    assertEquals(w.code, 0, new TextDecoder().decode(w.stderr));
    const transactions = Number(new TextDecoder().decode(w.stdout).trim());
    assert(transactions > 200, `the writer wrote only ${transactions} transactions`);

    const last = new Replicating(["-config", config]);
    await last.waitForLog();
    const out = await last.stop();
    assertEquals(out.code, 0, out.stderr);

    // what killed processes left half-written in the meta directory is gone
    const meta = join(dir, ".app.db-strata");
    for (const d of [meta, join(meta, "ltx", "0")]) {
      for await (const e of Deno.readDir(d)) {
        assert(!/\.tmp$|^snapshot-|^verify-/.test(e.name), `leftover ${e.name} in ${d}`);
      }
    }

    const client = new FileReplicaClient(replica);
    const chain = await checkL0Chain(client);
    assert(chain.files > 0 && chain.maxTXID > 20n, `${chain.files} L0 files to ${chain.maxTXID}`);
    const files = await listAllFiles(client);
    const max = files.reduce((m, f) => (f.maxTXID > m ? f.maxTXID : m), 0n);
    assertEquals(chain.maxTXID, max, "L0 reaches the newest TXID");
    const restored = join(dir, "restored.db");
    await restoreTarget(client, {}, restored, { integrityCheck: "full" });
    const got = await digestOf(restored);
    assertEquals(got.integrity, "ok");
    assertEquals(got.digest, (await digestOf(db)).digest);
    // every snapshot is a full, valid file too
    for (const f of files.filter((f) => f.level === SNAPSHOT_LEVEL)) {
      const dec = new LtxDecoder(await client.openFile(f.level, f.minTXID, f.maxTXID));
      await dec.verify();
    }
  } finally {
    await Deno.writeTextFile(stop, "").catch(() => {});
    try {
      writer.kill("SIGKILL");
    } catch { /* exited */ }
    await writer.status;
    await Deno.remove(dir, { recursive: true });
  }
});

/** Commits some rows, then opens a transaction big enough to spill into the WAL and waits. */
const TX_WRITER = `
import sqlite3, sys, time
db = sys.argv[1]
con = sqlite3.connect(db, isolation_level=None, timeout=30)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)")
con.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at REAL, what TEXT)")
for i in range(50):
    con.execute("INSERT INTO items (name, body, n) VALUES (?, ?, ?)", ("committed-%d" % i, b"c" * 500, i))
con.execute("PRAGMA cache_size=8")
con.execute("BEGIN")
for i in range(400):
    con.execute("INSERT INTO items (name, body, n) VALUES (?, ?, ?)", ("UNCOMMITTED-%d" % i, b"UNCOMMITTED-MARKER" * 50, i))
print("in-transaction", flush=True)
time.sleep(60)
`;

Deno.test("kill -9 of the app in the middle of a transaction: the replica never contains it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-appkill-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const marker = new TextEncoder().encode("UNCOMMITTED-MARKER");
  let rep: Replicating | null = null;
  try {
    // the app starts first (strata needs the database to exist)
    const app = new Deno.Command("python3", {
      args: ["-c", TX_WRITER, db],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = app.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("in-transaction")) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    assert(seen.includes("in-transaction"), "the app reached its open transaction");
    rep = new Replicating([db, `file://${replica}`]);
    await rep.waitForLog(); // strata captures while the transaction is open
    app.kill("SIGKILL");
    await app.status;
    await lines.cancel().catch(() => {});
    await app.stderr.cancel().catch(() => {});
    // the uncommitted pages did reach the WAL: the test exercises the hazard
    const wal = await Deno.readFile(db + "-wal");
    assert(contains(wal, marker), "the open transaction spilled pages into the WAL");
    // a later app commits on top of the abandoned frames
    const later = await new Deno.Command("sqlite3", {
      // (strata holds the write lock for a moment around each capture: wait for it)
      args: [
        db,
        "PRAGMA busy_timeout=10000; INSERT INTO items (name, body, n) VALUES ('after', x'00', 1);",
      ],
      stdout: "null",
    }).output();
    assertEquals(later.code, 0);
    await new Promise((r) => setTimeout(r, 800));
    const out = await rep.stop();
    rep = null;
    assertEquals(out.code, 0, out.stderr);

    const client = new FileReplicaClient(replica);
    for (const f of await listAllFiles(client)) {
      const dec = new LtxDecoder(await client.openFile(f.level, f.minTXID, f.maxTXID));
      await dec.readHeader();
      for (let p = await dec.nextPage(); p; p = await dec.nextPage()) {
        assert(
          !contains(p.data, marker),
          `level ${f.level} file ${f.maxTXID} holds uncommitted data`,
        );
      }
    }
    const restored = join(dir, "restored.db");
    await restoreTarget(client, {}, restored, { integrityCheck: "full" });
    const q = await new Deno.Command("sqlite3", {
      args: [
        restored,
        "SELECT count(*), sum(name LIKE 'UNCOMMITTED%'), sum(name = 'after') FROM items",
      ],
      stdout: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(q.stdout).trim(), "51|0|1");
  } finally {
    await rep?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * A read transaction begun while the WAL is fully checkpointed does not
 * stop the app's next commit from restarting the WAL and writing over its
 * frames. strata (a separate process) starts at exactly that moment; the
 * app (another process) commits in the middle of strata's first captures.
 * Every file strata writes must still hold the state it claims and chain to
 * the one before it.
 */

import { join } from "node:path";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { restoreTarget } from "../src/restore/mod.ts";
import { decodeLtx, encodeLtx, formatLtxFileName } from "../src/ltx/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { digestOf, Replicating } from "./helpers/strata.ts";
import { checkL0Chain } from "./helpers/chain.ts";
import { PROJECT_ROOT } from "./helpers/vectors.ts";

const DRIVER = join(PROJECT_ROOT, "tests/helpers/replicate_once.ts");

/**
 * The app: for each line N on its stdin, commits N rows, then checkpoints its
 * WAL completely (no one else reads) and says so; it stays connected, so the
 * checkpointed WAL stays as it is until its next commit.
 */
const APP = `
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)")
con.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at REAL, what TEXT)")
for line in sys.stdin:
    for i in range(int(line)):
        con.execute("INSERT INTO items (name, body, n) VALUES (?, randomblob(1500), ?)", ("a%d" % i, i))
    busy, log, done = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and log > 0 and done == log, (busy, log, done)
    print("checkpointed", log, flush=True)
`;

/** A later commit: its frames restart the WAL over the checkpointed ones. */
const WRITE = `
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN")
for i in range(40):
    con.execute("INSERT INTO items (name, body, n) VALUES (?, randomblob(2500), ?)", ("w%d" % i, i))
con.execute("INSERT INTO log (at, what) VALUES (0, 'write')")
con.execute("COMMIT")
`;

/** The app process, driven line by line. */
class App {
  readonly #child: Deno.ChildProcess;
  readonly #in: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out: ReadableStreamDefaultReader<string>;

  constructor(db: string) {
    this.#child = new Deno.Command("python3", {
      args: ["-c", APP, db],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#in = this.#child.stdin.getWriter();
    this.#out = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Commits `rows` rows and checkpoints the WAL completely. */
  async writeAndCheckpoint(rows: number): Promise<void> {
    await this.#in.write(new TextEncoder().encode(`${rows}\n`));
    let seen = "";
    while (!seen.includes("checkpointed")) {
      const { value, done } = await this.#out.read();
      if (done) throw new Error("the app exited before checkpointing");
      seen += value;
    }
  }

  async stop(): Promise<void> {
    await this.#in.close().catch(() => {});
    await this.#out.cancel().catch(() => {});
    await this.#child.status;
  }
}

/** Replicates once with the app's WRITE run when strata logs `trigger`. */
async function replicateOnce(db: string, replica: string, trigger: string): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DRIVER, db, replica, trigger, WRITE],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 0, log);
  return log;
}

async function copyFiles(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

/** The digest of `dir`'s state at `txid` (a replica, or the meta directory: same layout). */
async function restoredDigest(dir: string, out: string, txid?: bigint): Promise<string> {
  await restoreTarget(new FileReplicaClient(dir), { txid }, out, { integrityCheck: "full" });
  const d = await digestOf(out);
  assertEquals(d.integrity, "ok");
  return d.digest;
}

Deno.test("the app restarts a checkpointed WAL while strata's first full copy reads it: the copy holds the captured state and the next file chains to it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-walrestart-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const app = new App(db);
  try {
    await app.writeAndCheckpoint(60);
    const before = (await digestOf(db)).digest;
    const log = await replicateOnce(db, replica, "capturing a full copy of the database");
    const after = (await digestOf(db)).digest;
    assert(before !== after);
    assert(!log.includes("restarted by another process"), log);

    await checkL0Chain(new FileReplicaClient(replica));
    // the first full copy is the replica's snapshot (level 9), TXID 1
    assertEquals(await restoredDigest(replica, join(dir, "at1.db"), 1n), before, "TXID 1");
    assertEquals(await restoredDigest(replica, join(dir, "latest.db")), after, "latest");
  } finally {
    await app.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the app restarts a checkpointed WAL while strata captures what it wrote while strata was stopped: the file holds those pages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-walrestart-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const app = new App(db);
  try {
    await app.writeAndCheckpoint(30);
    await replicateOnce(db, replica, "INFO replicating");
    // strata stopped; the app commits more and checkpoints its WAL completely
    await app.writeAndCheckpoint(30);
    const before = (await digestOf(db)).digest;
    const log = await replicateOnce(db, replica, "frames written while strata was stopped");
    const after = (await digestOf(db)).digest;
    assert(!log.includes("restarted by another process"), log);

    // start-up captured those frames as one file: the position it logged
    const started = /INFO replicating .*position=(\d+)/.exec(log);
    assert(started, log);
    const tail = BigInt(started[1]);
    await checkL0Chain(new FileReplicaClient(replica));
    // uploads merge local files: the state at the tail is a boundary in the local ones, which
    // chain to the replica's snapshot
    const view = join(dir, "view");
    await copyFiles(join(replica, "ltx", "9"), join(view, "ltx", "9"));
    await copyFiles(join(dir, ".app.db-strata", "ltx", "0"), join(view, "ltx", "0"));
    assertEquals(await restoredDigest(view, join(dir, "tail.db"), tail), before, `TXID ${tail}`);
    assertEquals(await restoredDigest(replica, join(dir, "latest.db")), after, "latest");
  } finally {
    await app.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a local file whose pre-apply checksum does not continue the replica's newest file is never uploaded: the replica is re-seeded with a snapshot", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-walrestart-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const ltx = join(dir, ".app.db-strata", "ltx", "0");
  try {
    const made = await new Deno.Command("sqlite3", {
      args: [
        db,
        "PRAGMA journal_mode=WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER); CREATE TABLE log (id INTEGER PRIMARY KEY, at REAL, what TEXT); INSERT INTO items (name, body, n) SELECT 'r', randomblob(900), value FROM generate_series(1, 40);",
      ],
      stdout: "null",
    }).output();
    assertEquals(made.code, 0);
    let rep = new Replicating([db, `file://${replica}`]);
    await rep.waitForLog();
    assertEquals((await rep.stop()).code, 0);

    // what a strata that lost track of its checksum left behind: the local file after the
    // replica's newest one starts from another state (same pages, same end)
    const first = await decodeLtx(await Deno.readFile(join(ltx, formatLtxFileName(1n, 1n))));
    const post = first.trailer.postApplyChecksum;
    const header = { ...first.header, minTXID: 2n, maxTXID: 2n, preApplyChecksum: post ^ 0x5a5an };
    await Deno.writeFile(
      join(ltx, formatLtxFileName(2n, 2n)),
      await encodeLtx(header, first.pages, post),
    );

    rep = new Replicating([db, `file://${replica}`]);
    // until the replica holds TXID 2, one way or the other
    const client = new FileReplicaClient(replica);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const all = [...await client.listFiles(0), ...await client.listFiles(SNAPSHOT_LEVEL)];
      if (all.some((f) => f.maxTXID >= 2n)) break;
      assert(Date.now() < deadline, `the replica never reached TXID 2:\n${rep.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const out = await rep.stop();
    assertEquals(out.code, 0, out.stderr);
    assert(/does not continue the replica/.test(out.stderr), out.stderr);
    await checkL0Chain(client);
    assertEquals(
      await restoredDigest(replica, join(dir, "latest.db")),
      (await digestOf(db)).digest,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

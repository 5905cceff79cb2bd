/**
 * Chaos: a seeded, bounded schedule of app writes (a Python process whose rows
 * carry their sequence number), kill -9 of `strata replicate` and restarts,
 * outside checkpoints (PASSIVE/TRUNCATE from the sqlite3 CLI, also while
 * strata is down), replica outages (the replica directory replaced by a file;
 * STRATA_CHAOS_OUTAGES=0 leaves them out) and the database replaced by a
 * `VACUUM INTO` copy of itself plus more rows, moved in with `mv` with the old
 * -wal and -shm removed (STRATA_CHAOS_REPLACE=0 leaves it out). Then every restore (latest,
 * -timestamp in quiet gaps, -txid at random) must either hold exactly the rows
 * committed by that point (sequence numbers 1..k, nothing missing, no gap) or
 * fail with a non-zero exit and a message.
 *
 * STRATA_CHAOS_SEED picks the schedule (printed), STRATA_CHAOS_SECONDS its length; a failed
 * run keeps its directory (named in the error), STRATA_CHAOS_KEEP=1 keeps it always.
 */

import { join } from "node:path";
import { LtxDecoder } from "../src/ltx/mod.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { assert } from "./helpers/assert.ts";
import { rng } from "./helpers/pages.ts";
import { python } from "./helpers/ops.ts";
import { Replicating, strata } from "./helpers/strata.ts";

/**
 * Writes one row per transaction, `seq` = its sequence number, logging "seq began committed"
 * (wall-clock ms before BEGIN and after COMMIT) once committed.
 */
const APP = `
import os, sqlite3, sys, time
db, log, ctl = sys.argv[1], sys.argv[2], sys.argv[3]
def body(seq):
    return ("row-%d;" % seq) * (1 + (seq * 7919) % 300)
def connect():
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE IF NOT EXISTS rows (seq INTEGER PRIMARY KEY, body TEXT)")
    return con
con = connect()
out = open(log, "a")
while not os.path.exists(ctl + ".stop"):
    if os.path.exists(ctl + ".pause"):
        con.close()
        open(ctl + ".paused", "w").close()
        while os.path.exists(ctl + ".pause"):
            time.sleep(0.01)
        os.remove(ctl + ".paused")
        con = connect()
        continue
    seq = (con.execute("SELECT max(seq) FROM rows").fetchone()[0] or 0) + 1
    began = int(time.time() * 1000)
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO rows (seq, body) VALUES (?, ?)", (seq, body(seq)))
    con.execute("COMMIT")
    out.write("%d %d %d\\n" % (seq, began, int(time.time() * 1000)))
    out.flush()
    time.sleep(0.003)
con.close()
`;

/** The sequence numbers in a database, with rows whose body does not match its number. */
const READ_ROWS = `
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
seqs, bad = [], []
for seq, body in con.execute("SELECT seq, body FROM rows ORDER BY seq"):
    seqs.append(seq)
    if body != ("row-%d;" % seq) * (1 + (seq * 7919) % 300):
        bad.append(seq)
print(json.dumps({"seqs": seqs, "bad": bad, "integrity": con.execute("PRAGMA integrity_check").fetchone()[0]}))
`;

async function sqlite3(db: string, script: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("sqlite3", {
    args: [db, script],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  // (the busy_timeout pragma prints its value first)
  const text = `${dec.decode(r.stdout).trim()} ${dec.decode(r.stderr).trim()}`;
  return { code: r.code, out: text.replace(/^\d+\n/, "").trim() };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A moment the app was quiet and strata's replica held everything committed before it. */
interface Anchor {
  time: number;
  seq: number;
  txid: bigint;
}

Deno.test("chaos: writes, kill -9, outside checkpoints, replica outages, file replacement: every restore is exact or a named failure", async () => {
  const seed = Number(Deno.env.get("STRATA_CHAOS_SEED") ?? Math.floor(Math.random() * 1e9));
  const seconds = Number(Deno.env.get("STRATA_CHAOS_SECONDS") ?? "90");
  const replace = Deno.env.get("STRATA_CHAOS_REPLACE") !== "0";
  const outages = Deno.env.get("STRATA_CHAOS_OUTAGES") !== "0";
  console.log(
    `chaos seed ${seed} (STRATA_CHAOS_SEED), ${seconds} s, outages ${outages}, file replacement ${replace}`,
  );
  const rand = rng(seed);
  const pick = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const dir = await Deno.makeTempDir({ prefix: "strata-chaos-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const log = join(dir, "commits.log");
  const ctl = join(dir, "ctl");
  const config = join(dir, "strata.yml");
  await Deno.writeTextFile(
    config,
    `dbs:\n  - path: ${db}\n    monitor-interval: 50ms\n    replicas:\n      - url: file://${replica}\n        sync-interval: 100ms\n`,
  );
  const events: string[] = [];
  const note = (s: string) => events.push(`${new Date().toISOString()} ${s.replaceAll("\n", " ")}`);
  const app = new Deno.Command("python3", {
    args: ["-c", APP, db, log, ctl],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let rep: Replicating | null = null;
  let outage = false;
  let passed = false;
  const anchors: Anchor[] = [];
  const fail = (msg: string): never => {
    throw new Error(
      `chaos seed ${seed}: ${msg}\nschedule:\n${events.slice(-60).join("\n")}\n(dir ${dir})`,
    );
  };
  /** seq -> [ms before BEGIN, ms after COMMIT], as the app logged them. */
  const commits = async (): Promise<Map<number, [number, number]>> => {
    const m = new Map<number, [number, number]>();
    for (const l of (await Deno.readTextFile(log).catch(() => "")).split("\n")) {
      const [s, b, c] = l.split(" ").map(Number);
      if (l !== "") m.set(s, [b, c]);
    }
    return m;
  };
  const pause = async () => {
    await Deno.writeTextFile(ctl + ".pause", "");
    await waitUntil("the app to pause", () => exists(ctl + ".paused"));
  };
  const resume = async () => {
    await Deno.remove(ctl + ".pause");
    await waitUntil("the app to resume", async () => !(await exists(ctl + ".paused")));
  };
  const start = () => {
    rep = new Replicating(["-config", config], { LOG_LEVEL: "info" });
  };
  const newestReplicaFile = async () => {
    const client = new FileReplicaClient(replica);
    const files = await client.listFiles(0);
    if (files.length === 0) return null;
    const f = files[files.length - 1];
    const dec = new LtxDecoder(await client.openFile(0, f.minTXID, f.maxTXID));
    const h = await dec.readHeader();
    return h;
  };
  try {
    await waitUntil("the app's first commit", async () => (await commits()).size > 0);
    start();
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const r = rand();
      if (r < 0.3) {
        const ms = pick(100, 1200);
        note(`write ${ms} ms`);
        await sleep(ms);
      } else if (r < 0.45) {
        const down = pick(0, 600);
        const checkpoint = rand() < 0.4 ? (rand() < 0.5 ? "TRUNCATE" : "PASSIVE") : null;
        note(`kill -9 strata, down ${down} ms${checkpoint ? `, ${checkpoint} checkpoint` : ""}`);
        await rep!.stop("SIGKILL");
        rep = null;
        await sleep(down);
        if (checkpoint) {
          note(
            await sqlite3(db, `PRAGMA busy_timeout=5000; PRAGMA wal_checkpoint(${checkpoint});`)
              .then((c) => `  -> ${c.out}`),
          );
        }
        start();
      } else if (r < 0.6 && outages && !outage) {
        const ms = pick(300, 2500);
        note(`replica outage ${ms} ms`);
        outage = true;
        await Deno.rename(replica, replica + ".away").catch(() => {});
        await Deno.writeTextFile(replica, "not a directory");
        await sleep(ms);
        await Deno.remove(replica);
        await Deno.rename(replica + ".away", replica).catch(() => {});
        outage = false;
      } else if (r < 0.75) {
        const mode = rand() < 0.5 ? "TRUNCATE" : "PASSIVE";
        const c = await sqlite3(db, `PRAGMA busy_timeout=2000; PRAGMA wal_checkpoint(${mode});`);
        note(`outside ${mode} checkpoint -> ${c.out}`);
      } else if (r < 0.9) {
        // a quiet gap: the app pauses until the replica holds its last commit
        await pause();
        const all = await commits();
        const seq = Math.max(...all.keys());
        const at = all.get(seq)![1];
        let h = null;
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          h = await newestReplicaFile().catch(() => null);
          // stamped after the last commit returned, and nothing newer comes in 0.5 s (a
          // capture that read the WAL before that commit is followed by one that holds it)
          if (h && Number(h.timestamp) > at + 1) {
            await sleep(500);
            const again = await newestReplicaFile().catch(() => null);
            if (again && again.maxTXID === h.maxTXID) break;
          }
          h = null;
          await sleep(50);
        }
        if (h) {
          await sleep(20);
          const time = Date.now();
          anchors.push({ time, seq, txid: h.maxTXID });
          note(`gap: seq ${seq} = TXID ${h.maxTXID} at ${new Date(time).toISOString()}`);
          await sleep(30);
        } else note(`gap: seq ${seq} not confirmed in the replica`);
        await resume();
      } else if (replace) {
        await pause();
        const copy = join(dir, "copy.db");
        await Deno.remove(copy).catch(() => {});
        const all = await commits();
        let seq = Math.max(...all.keys());
        const extra = pick(1, 20);
        let c = await sqlite3(db, `PRAGMA busy_timeout=5000; VACUUM INTO '${copy}';`);
        if (c.code !== 0) fail(`VACUUM INTO: ${c.out}`);
        c = await sqlite3(copy, "PRAGMA journal_mode=WAL;");
        const lines = [];
        for (let i = 0; i < extra; i++) {
          seq++;
          const began = Date.now();
          c = await sqlite3(
            copy,
            `INSERT INTO rows (seq, body) VALUES (${seq}, replace(printf('%.*c', ${
              1 + (seq * 7919) % 300
            }, 'x'), 'x', 'row-${seq};'));`,
          );
          if (c.code !== 0) fail(`insert into copy: ${c.out}`);
          lines.push(`${seq} ${began} ${Date.now()}`);
        }
        // the old WAL must not be replayed into the new file: the old file's -wal and -shm go
        // with it (strata's monitor still has them open until it notices the new file)
        c = await sqlite3(db, "PRAGMA busy_timeout=5000; PRAGMA wal_checkpoint(TRUNCATE);");
        for (const x of ["-wal", "-shm"]) await Deno.remove(db + x).catch(() => {});
        await Deno.rename(copy, db);
        await Deno.writeTextFile(log, lines.join("\n") + "\n", { append: true });
        note(
          `replaced the database (VACUUM INTO + ${extra} rows to seq ${seq}), checkpoint ${c.out}`,
        );
        await resume();
      }
    }
    await Deno.writeTextFile(ctl + ".stop", "");
    const a = await app.output();
    assert(a.code === 0, `app failed: ${new TextDecoder().decode(a.stderr)}`);
    // a clean stop is one of a running replicator: a SIGINT before strata has set up its signal
    // handling (a restart moments ago, on a loaded machine) ends it with 130, as for any program
    await (rep as Replicating | null)!.waitForLog();
    const out = await (rep as Replicating | null)!.stop("SIGINT");
    rep = null;
    if (out.code !== 0) fail(`clean stop exited ${out.code}: ${out.stderr.slice(-2000)}`);
    const all = await commits();
    const total = Math.max(...all.keys());
    for (let s = 1; s <= total; s++) if (!all.has(s)) fail(`the app's log lacks seq ${s}`);
    console.log(`${total} commits, ${anchors.length} confirmed gaps, ${events.length} actions`);

    let n = 0;
    const restore = async (
      what: string,
      args: string[],
    ): Promise<{ seqs: number[]; txid: bigint; earlier: boolean } | null> => {
      const o = join(dir, `restored-${n++}.db`);
      const r = await strata([
        "restore",
        "-json",
        "-no-progress",
        "-o",
        o,
        ...args,
        `file://${replica}`,
      ]);
      if (r.code !== 0) {
        if ((r.stderr + r.stdout).trim() === "") fail(`${what}: exit ${r.code} without a message`);
        note(`${what}: refused: ${r.stderr.trim().split("\n").pop()}`);
        return null;
      }
      let report: { txid: string; time: string; earlierThanAsked: boolean };
      try {
        report = JSON.parse(r.stdout.trim().split("\n").pop()!);
      } catch {
        return fail(`${what}: exit 0 without a JSON report: ${r.stdout}`);
      }
      const time = Date.parse(report.time);
      const got = JSON.parse(await python(READ_ROWS, o));
      if (got.integrity !== "ok") fail(`${what}: integrity ${got.integrity}`);
      if (got.bad.length > 0) fail(`${what}: rows with wrong content ${got.bad.slice(0, 10)}`);
      const seqs: number[] = got.seqs;
      for (let i = 0; i < seqs.length; i++) {
        if (seqs[i] !== i + 1) {
          fail(`${what}: not a prefix: seq ${i + 1} missing (has ${seqs[i]}, ${seqs.length} rows)`);
        }
      }
      // no row whose transaction began after the moment strata says it restored
      const late = seqs.find((s) => all.get(s)![0] > time + 1);
      if (late !== undefined) {
        fail(`${what}: has seq ${late}, begun at ${all.get(late)![0]}, after ${report.time}`);
      }
      await Deno.remove(o);
      return { seqs, txid: BigInt("0x" + report.txid), earlier: report.earlierThanAsked };
    };

    // latest after a clean stop: every committed row
    const latest = await restore("latest restore", []);
    if (!latest) fail("the latest restore after a clean stop failed");
    if (latest!.seqs.length !== total) {
      fail(`latest restore has ${latest!.seqs.length} of ${total} committed rows`);
    }
    // the quiet gaps: exactly what was committed by then, by time and by TXID
    const chosen = anchors.filter(() => rand() < 8 / anchors.length);
    for (const g of chosen) {
      const iso = new Date(g.time).toISOString();
      const byTime = await restore(`-timestamp ${iso}`, ["-timestamp", iso]);
      if (
        byTime && (byTime.seqs.length > g.seq || (!byTime.earlier && byTime.seqs.length < g.seq))
      ) {
        fail(`-timestamp ${iso}: ${byTime.seqs.length} rows, ${g.seq} committed by then`);
      }
      const byTxid = await restore(`-txid ${g.txid}`, ["-txid", "0x" + g.txid.toString(16)]);
      if (byTxid && (byTxid.txid !== g.txid || byTxid.seqs.length !== g.seq)) {
        fail(
          `-txid ${g.txid}: restored TXID ${byTxid.txid} with ${byTxid.seqs.length} rows, ${g.seq} committed at that TXID`,
        );
      }
    }
    // random TXIDs: a prefix, between the neighbouring gaps' row counts
    // (half of them where an L0 file ends, which a restore can reach exactly)
    const ends = (await new FileReplicaClient(replica).listFiles(0)).map((f) => f.maxTXID);
    for (let i = 0; i < 6 && latest!.txid > 1n; i++) {
      const x = i % 2 === 0 && ends.length > 0
        ? ends[Math.floor(rand() * ends.length)]
        : 1n + BigInt(Math.floor(rand() * Number(latest!.txid)));
      const got = await restore(`-txid ${x}`, ["-txid", "0x" + x.toString(16)]);
      if (!got) continue;
      if (got.txid !== x) fail(`-txid ${x}: restored TXID ${got.txid}`);
      for (const g of anchors) {
        if (g.txid <= x && got.seqs.length < g.seq) {
          fail(`-txid ${x}: ${got.seqs.length} rows, but TXID ${g.txid} already had ${g.seq}`);
        }
        if (g.txid >= x && got.seqs.length > g.seq) {
          fail(`-txid ${x}: ${got.seqs.length} rows, but TXID ${g.txid} had only ${g.seq}`);
        }
      }
    }
    console.log(events.filter((e) => e.includes("refused")).join("\n"));
    passed = true;
  } finally {
    await Deno.writeTextFile(ctl + ".stop", "").catch(() => {});
    await Deno.remove(ctl + ".pause").catch(() => {});
    try {
      app.kill("SIGKILL");
    } catch { /* exited */ }
    await app.status;
    for (const s of [() => app.stdout, () => app.stderr]) {
      try {
        await s().cancel();
      } catch { /* consumed */ }
    }
    if (rep) await (rep as Replicating).stop("SIGKILL");
    if (await exists(replica + ".away")) {
      await Deno.remove(replica).catch(() => {});
      await Deno.rename(replica + ".away", replica).catch(() => {});
    }
    if (passed && Deno.env.get("STRATA_CHAOS_KEEP") !== "1") {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

/**
 * A replica file's name is never trusted over its content (issue 15, items
 * 1 and 16): with real `strata replicate` processes writing a file replica
 * and an S3 (fauxqs) replica while an app writes, files are renamed, copied
 * in from another database, or corrupted; `restore`, `verify` and
 * `restore -f` either restore exactly the source's data along another
 * verified path (saying which file they left out) or refuse, naming the file.
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { Replicating, strata } from "./helpers/strata.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { readAll } from "./helpers/conformance.ts";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { FileReplicaClient, type ReplicaClient, type ReplicaFile } from "../src/storage/mod.ts";
import { listAllFiles } from "../src/restore/mod.ts";
import {
  databaseChecksumOfPages,
  encodeLtx,
  formatLtxFileName,
  lockPageNumber,
  makeHeader,
} from "../src/ltx/mod.ts";

const SNAPSHOT = 9;

interface Replica {
  kind: string;
  url: string;
  client: ReplicaClient;
}

/** Runs python code against `db` as a separate app process. */
async function py(code: string, ...args: string[]): Promise<void> {
  const r = await new Deno.Command("python3", { args: ["-c", code, ...args], stderr: "piped" })
    .output();
  if (r.code !== 0) throw new Error(new TextDecoder().decode(r.stderr));
}

const APP = `
import sqlite3, sys, time, os
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
for i in range(int(sys.argv[2])):
    con.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(3000),))
    time.sleep(float(sys.argv[3]))
`;

/** The app's rows and the integrity check, read by another process. */
async function digestOf(db: string): Promise<{ digest: string; integrity: string }> {
  const code = `
import hashlib, sqlite3, sys, json
con = sqlite3.connect(sys.argv[1])
h = hashlib.sha256()
for row in con.execute("SELECT * FROM t ORDER BY id"):
    h.update(repr(row).encode())
print(json.dumps({"digest": h.hexdigest(), "integrity": con.execute("PRAGMA integrity_check").fetchone()[0]}))
`;
  const r = await new Deno.Command("python3", { args: ["-c", code, db], stdout: "piped" }).output();
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

async function waitFor(
  what: string,
  cond: () => Promise<boolean> | boolean,
  ms = 60_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function maxTXID(c: ReplicaClient): Promise<bigint> {
  return (await listAllFiles(c)).reduce((m, f) => (f.maxTXID > m ? f.maxTXID : m), 0n);
}

async function bytesOf(c: ReplicaClient, f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">) {
  return await readAll(await c.openFile(f.level, f.minTXID, f.maxTXID));
}

async function put(c: ReplicaClient, level: number, min: bigint, max: bigint, b: Uint8Array) {
  await c.writeFile(level, min, max, ReadableStream.from([b]), new Date());
}

/** A database file's pages as an LTX snapshot whose header says TXIDs 1..`max`. */
async function snapshotOf(db: string, max: bigint): Promise<Uint8Array> {
  const bytes = await Deno.readFile(db);
  const ps = (bytes[16] << 8) | bytes[17];
  const pages: { pgno: number; data: Uint8Array }[] = [];
  const all: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += ps) {
    const pgno = i / ps + 1;
    all.push(bytes.subarray(i, i + ps));
    if (pgno !== lockPageNumber(ps)) pages.push({ pgno, data: bytes.subarray(i, i + ps) });
  }
  return await encodeLtx(
    makeHeader({ pageSize: ps, commit: all.length, minTXID: 1n, maxTXID: max }),
    pages,
    databaseChecksumOfPages(all, ps),
  );
}

/** A source replicated by one `strata replicate` to a file and an S3 replica. */
async function replicatedSource(dir: string, s3Endpoint: string, bucket: string) {
  const db = join(dir, "app.db");
  const fileRoot = join(dir, "file-replica");
  const config = join(dir, "strata.yml");
  await Deno.writeTextFile(
    config,
    `dbs:
  - path: ${db}
    replicas:
      - url: file://${fileRoot}
        sync-interval: 100ms
      - type: s3
        bucket: ${bucket}
        path: app
        endpoint: ${s3Endpoint}
        sync-interval: 100ms
`,
  );
  await py(APP, db, "20", "0");
  const replicas: Replica[] = [
    { kind: "file", url: `file://${fileRoot}`, client: new FileReplicaClient(fileRoot) },
    {
      kind: "s3",
      url: `s3://${bucket}/app?endpoint=${s3Endpoint}`,
      client: new S3ReplicaClient({
        bucket,
        path: "app",
        endpoint: s3Endpoint,
        forcePathStyle: true,
        accessKeyId: "x",
        secretAccessKey: "y",
      }),
    },
  ];
  const rep = new Replicating(["-config", config], TEST_CREDENTIALS);
  try {
    // several captures: a commit every 300 ms until both replicas hold TXID 6
    const app = py(APP, db, "40", "0.3");
    for (const r of replicas) {
      await waitFor(`${r.kind} replica at TXID 6`, async () => (await maxTXID(r.client)) >= 6n);
    }
    await app;
  } finally {
    const st = await rep.stop();
    assertEquals(st.code, 0, st.stderr);
  }
  return { db, config, replicas };
}

Deno.test("renamed and foreign replica files: restore and verify never trust a file's name", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-trust-" });
  const env = TEST_CREDENTIALS;
  try {
    const src = await replicatedSource(dir, s3.endpoint, await s3.createBucket());
    const source = await digestOf(src.db);
    // another database, of the same page size
    const foreign = join(dir, "foreign.db");
    await py(APP, foreign, "15", "0");
    await py(
      "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)')",
      foreign,
    );
    const out = join(dir, "out.db");
    const fresh = async () => await Deno.remove(out).catch(() => {});

    for (const r of src.replicas) {
      const c = r.client;
      const files = await listAllFiles(c);
      const top = await maxTXID(c);
      const ok = await strata(["restore", "-o", out, r.url], { env });
      assertEquals(ok.code, 0, ok.stderr);
      assertEquals((await digestOf(out)).digest, source.digest, `${r.kind}: baseline`);
      await fresh();

      // 1. the newest L0 file renamed to claim 3 more TXIDs
      const l0 = files.filter((f) => f.level === 0);
      const newest = l0[l0.length - 1];
      const original = await bytesOf(c, newest);
      const fake = { level: 0, minTXID: newest.minTXID, maxTXID: newest.maxTXID + 3n };
      await put(c, 0, fake.minTXID, fake.maxTXID, original);
      await c.deleteFiles([newest]);
      const fakeName = formatLtxFileName(fake.minTXID, fake.maxTXID);
      const renamed = await strata(["restore", "-o", out, r.url], { env });
      assertEquals(renamed.code, 1, `${r.kind}: renamed file restored: ${renamed.stdout}`);
      assert(renamed.stderr.includes(fakeName), `${r.kind}: names ${fakeName}: ${renamed.stderr}`);
      assert(/header covers TXIDs/.test(renamed.stderr), renamed.stderr);
      assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing restored");
      const v1 = await strata(["verify", "-no-progress", r.url], { env });
      assertEquals(v1.code, 1, `${r.kind}: verify said ${v1.stdout}`);
      assert(v1.stdout.includes("FAILED") && v1.stdout.includes(fakeName), v1.stdout);
      await c.deleteFiles([fake]);
      await put(c, 0, newest.minTXID, newest.maxTXID, original);

      // 2. another database's snapshot copied in as the newest snapshot, as it was
      //    (its header says TXID 1) and re-labelled (its header says what the name says)
      const foreignSnaps = [
        { how: "copied", bytes: await snapshotOf(foreign, 1n) },
        { how: "re-labelled", bytes: await snapshotOf(foreign, top) },
      ];
      const snapName = formatLtxFileName(1n, top);
      for (const fs of foreignSnaps) {
        await put(c, SNAPSHOT, 1n, top, fs.bytes);
        const rr = await strata(["restore", "-o", out, r.url], { env });
        assertEquals(rr.code, 0, `${r.kind} ${fs.how}: ${rr.stderr}`);
        assertEquals(
          (await digestOf(out)).digest,
          source.digest,
          `${r.kind} ${fs.how}: the source's data, not the other database's`,
        );
        assert(
          rr.stderr.includes(`L9/${snapName}`),
          `${r.kind} ${fs.how}: says it left out L9/${snapName}: ${rr.stderr}`,
        );
        await fresh();
        const v = await strata(["verify", "-no-progress", r.url], { env });
        assertEquals(v.code, 1, `${r.kind} ${fs.how}: verify said ${v.stdout}`);
        assert(v.stdout.includes(`L9/${snapName}`), v.stdout);
        await c.deleteFiles([{ level: SNAPSHOT, minTXID: 1n, maxTXID: top }]);
      }
      const after = await strata(["verify", "-no-progress", r.url], { env });
      assertEquals(after.code, 0, `${r.kind}: restored replica verifies: ${after.stdout}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

Deno.test("restore -f: a renamed or foreign file is refused by name; the copy keeps the source's data", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-trust-follow-" });
  const env = TEST_CREDENTIALS;
  try {
    const src = await replicatedSource(dir, s3.endpoint, await s3.createBucket());
    const source = await digestOf(src.db);
    const foreign = join(dir, "foreign.db");
    await py(APP, foreign, "15", "0");
    await py(
      "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)')",
      foreign,
    );
    for (const r of src.replicas) {
      const c = r.client;
      const out = join(dir, `follow-${r.kind}.db`);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(import.meta.dirname!, "..", "main.ts"),
          "restore",
          "-f",
          "-o",
          out,
          r.url,
        ],
        env: { NO_COLOR: "1", ...env },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let log = "";
      const pump = (async () => {
        for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) log += t;
      })();
      const stdout = new Response(child.stdout).text();
      try {
        await waitFor(`${r.kind}: follow started`, () => log.includes("following replica"));
        assertEquals((await digestOf(out)).digest, source.digest);
        const files = await listAllFiles(c);
        const top = await maxTXID(c);
        const l0 = files.filter((f) => f.level === 0);
        const newest = l0[l0.length - 1];
        // the newest L0 file copied in as the next TXIDs; another database's snapshot beyond
        await put(c, 0, top + 1n, top + 2n, await bytesOf(c, newest));
        await put(c, SNAPSHOT, 1n, top + 3n, await snapshotOf(foreign, 1n));
        const renamed = formatLtxFileName(top + 1n, top + 2n);
        const snap = formatLtxFileName(1n, top + 3n);
        await waitFor(
          `${r.kind}: follow refuses both files`,
          () => log.includes(renamed) && log.includes(snap),
        );
        assert(/failed its checks/.test(log), log);
        assertEquals((await digestOf(out)).digest, source.digest, `${r.kind}: copy unchanged`);
      } finally {
        child.kill("SIGINT");
        await child.status;
        await pump;
        await stdout;
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

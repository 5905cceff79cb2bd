/**
 * Shared by the replica-trust tests: a source database replicated by a real
 * `strata replicate` to a file and an S3 replica, and tools to tamper with
 * replica files and to craft LTX files.
 */

import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { Replicating } from "./strata.ts";
import { TEST_CREDENTIALS } from "./fauxqs.ts";
import { readAll } from "./conformance.ts";
import { S3ReplicaClient } from "../../src/storage/s3_client.ts";
import { FileReplicaClient, type ReplicaClient, type ReplicaFile } from "../../src/storage/mod.ts";
import { listAllFiles } from "../../src/restore/mod.ts";
import {
  databaseChecksumOfPages,
  encodeLtx,
  lockPageNumber,
  makeHeader,
} from "../../src/ltx/mod.ts";

export const SNAPSHOT = 9;

export interface Replica {
  kind: string;
  url: string;
  client: ReplicaClient;
}

/** Runs python code against `db` as a separate app process. */
export async function py(code: string, ...args: string[]): Promise<void> {
  const r = await new Deno.Command("python3", { args: ["-c", code, ...args], stderr: "piped" })
    .output();
  if (r.code !== 0) throw new Error(new TextDecoder().decode(r.stderr));
}

export const APP = `
import sqlite3, sys, time, os
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)")
for i in range(int(sys.argv[2])):
    con.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(3000),))
    time.sleep(float(sys.argv[3]))
`;

/** The app's rows and the integrity check, read by another process. */
export async function digestOf(db: string): Promise<{ digest: string; integrity: string }> {
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

export async function waitFor(
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

export async function maxTXID(c: ReplicaClient): Promise<bigint> {
  return (await listAllFiles(c)).reduce((m, f) => (f.maxTXID > m ? f.maxTXID : m), 0n);
}

export async function bytesOf(
  c: ReplicaClient,
  f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">,
) {
  return await readAll(await c.openFile(f.level, f.minTXID, f.maxTXID));
}

export async function put(
  c: ReplicaClient,
  level: number,
  min: bigint,
  max: bigint,
  b: Uint8Array,
) {
  await c.writeFile(level, min, max, ReadableStream.from([b]), new Date());
}

/** Another database (the app's schema, other rows), checkpointed into its file. */
export async function foreignDatabase(dir: string): Promise<string> {
  const foreign = join(dir, "foreign.db");
  await py(APP, foreign, "15", "0");
  await py(
    "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)')",
    foreign,
  );
  return foreign;
}

/** A database file's pages as an LTX snapshot whose header says TXIDs 1..`max`. */
export async function snapshotOf(db: string, max: bigint): Promise<Uint8Array> {
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
export async function replicatedSource(dir: string, s3Endpoint: string, bucket: string) {
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

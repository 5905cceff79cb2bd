/**
 * Restoring replicas as Litestream v0.5 leaves them (issue 18): files without
 * checksums, a level-9 snapshot, and compacted files that span the
 * snapshot's TXID once the L0 files after it have expired. Every restore is
 * compared byte for byte with the database as it was at that TXID.
 */

import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { formatChecksum } from "../src/ltx/mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { Replicating, strata } from "./helpers/strata.ts";
import { python, waitFor } from "./helpers/ops.ts";
import {
  databaseStates,
  ltxOfStates,
  putFile,
  putStates,
  stateChecksum,
} from "./helpers/litestream_v05.ts";

const T0 = Date.parse("2026-06-01T00:00:00Z");
/** When TXID `n` was written (a minute apart). */
const at = (n: number) => T0 + n * 60_000;

/** `INSERT INTO t` of `n` rows of deterministic text, tagged `tag`. */
const insertRows = (n: number, tag: string) =>
  `INSERT INTO t (body) WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${n}) ` +
  `SELECT printf('${tag} %d %x %s', v, v * 2654435761, substr(replace(printf('%.*c', 30, 'x'), 'x', v), 1, 90)) FROM s`;

function statements(): string[] {
  const out = [`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT); ${insertRows(300, "row")}`];
  for (let i = 2; i <= 12; i++) {
    out.push(
      i % 3 === 0
        ? `DELETE FROM t WHERE id % ${i} = 0`
        : i % 3 === 1
        ? `UPDATE t SET body = body || '-${i}' WHERE id % 7 = ${i % 7}`
        : insertRows(40 * i, `tx ${i}`),
    );
  }
  return out;
}

async function restore(url: string, out: string, args: string[]) {
  const r = await strata(["restore", "-json", "-no-progress", "-o", out, ...args, url]);
  assertEquals(r.code, 0, `restore ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

Deno.test("Litestream v0.5 replica: an L1 file spanning the snapshot continues it; no checksums, so the restore computes and reports one", async () => {
  const states = await databaseStates(statements());
  const dir = await Deno.makeTempDir({ prefix: "strata-ls05-" });
  try {
    const rep = join(dir, "replica");
    const client = new FileReplicaClient(rep);
    const put = (level: number, min: number, max: number) =>
      putStates(client, states, level, min, max, at);
    await put(SNAPSHOT_LEVEL, 1, 5);
    await put(1, 3, 8); // spans the snapshot: no file starts at TXID 6
    await put(1, 9, 10);
    await put(0, 11, 11);
    await put(0, 12, 12);
    const url = `file://${rep}`;
    let n = 0;
    const check = async (args: string[], txid: number) => {
      const out = join(dir, `out-${n++}.db`);
      const report = await restore(url, out, args);
      assertEquals(BigInt("0x" + report.txid), BigInt(txid), `${args.join(" ")}: TXID`);
      const got = await Deno.readFile(out);
      assert(
        got.length === states[txid - 1].length && got.every((b, i) => b === states[txid - 1][i]),
        `${args.join(" ") || "latest"}: the restored file equals the database at TXID ${txid}`,
      );
      assertEquals(report.checksumVerified, false);
      assertEquals(report.checksum, formatChecksum(stateChecksum(states[txid - 1])));
      return report;
    };
    await check([], 12);
    await check(["-txid", "8"], 8);
    await check(["-txid", "10"], 10);
    await check(["-txid", "5"], 5);
    // by time: the newest state in the replica at that moment
    await check(["-timestamp", new Date(at(8) + 30_000).toISOString()], 8);
    await check(["-timestamp", new Date(at(11)).toISOString()], 11);
    // the text report says what could not be verified
    const r = await strata(["restore", "-no-progress", "-o", join(dir, "text.db"), url]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /carry no checksums/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a checksummed file after Litestream's unverified ones is checked against the computed state, and verifies it again", async () => {
  const states = await databaseStates(statements());
  const dir = await Deno.makeTempDir({ prefix: "strata-ls05-" });
  try {
    const rep = join(dir, "replica");
    const client = new FileReplicaClient(rep);
    const file = (min: number, max: number, checksums = false) =>
      ltxOfStates(states, BigInt(min), BigInt(max), at(max), { checksums });
    await putFile(client, SNAPSHOT_LEVEL, 1n, 6n, await file(1, 6), at(6));
    await putFile(client, 0, 7n, 7n, await file(7, 7, true), at(7)); // strata continuing it
    const url = `file://${rep}`;
    const report = await restore(url, join(dir, "a.db"), []);
    assertEquals(report.checksumVerified, true);
    assertEquals(report.checksum, formatChecksum(stateChecksum(states[6])));

    // a strata file whose pre-apply checksum is not the state restored so far: refused by name
    const bad = join(dir, "bad");
    const badClient = new FileReplicaClient(bad);
    await putFile(badClient, SNAPSHOT_LEVEL, 1n, 5n, await file(1, 5), at(5));
    const wrong = await ltxOfStates(states, 7n, 7n, at(7), { checksums: true }); // pre = state 6
    await putFile(badClient, 0, 6n, 6n, await file(6, 6), at(6));
    // TXID 7's file claims TXID 6's successor but state 6 is replaced by a different one
    const other = await databaseStates([...statements().slice(0, 5), "DELETE FROM t"]);
    await Deno.remove(join(bad, "ltx", "0", "0000000000000006-0000000000000006.ltx"));
    await putFile(
      badClient,
      0,
      6n,
      6n,
      await ltxOfStates(other, 6n, 6n, at(6)),
      at(6),
    );
    await putFile(badClient, 0, 7n, 7n, wrong, at(7));
    const out = join(dir, "b.db");
    const r = await strata(["restore", "-no-progress", "-o", out, `file://${bad}`]);
    assert(r.code !== 0, "a chain that does not continue is refused");
    assertMatch(r.stderr, /0000000000000007-0000000000000007\.ltx.*pre-apply checksum/s);
    assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A digest of table t's rows and the integrity check, read by Python (another process). */
async function rowsOf(db: string): Promise<string> {
  return (await python(
    `import hashlib, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
h = hashlib.sha256()
for row in con.execute("SELECT * FROM t ORDER BY id"):
    h.update(repr(row).encode())
print(h.hexdigest(), con.execute("PRAGMA integrity_check").fetchone()[0])`,
    db,
  )).trim();
}

/**
 * The app's database as Litestream left it at TXID 11, and its replica in `dir`: a snapshot to
 * TXID 5, L1 files 3-8 (spanning the snapshot) and 9-10, an L0 file 11; no checksums.
 */
async function leftByLitestream(dir: string, states: Uint8Array[]) {
  const db = join(dir, "app.db");
  await Deno.writeFile(db, states[10]);
  const rep = join(dir, "replica");
  const client = new FileReplicaClient(rep);
  const put = (level: number, min: number, max: number) =>
    putStates(client, states, level, min, max, at);
  await put(SNAPSHOT_LEVEL, 1, 5);
  await put(1, 3, 8);
  await put(1, 9, 10);
  await put(0, 11, 11);
  return { db, rep, client };
}

Deno.test("strata replicate continues a Litestream v0.5 replica of the same database: no divergence, one chain", async () => {
  const states = await databaseStates(statements(), { wal: true });
  const dir = await Deno.makeTempDir({ prefix: "strata-ls05-" });
  try {
    const { db, rep, client } = await leftByLitestream(dir, states);
    const before = await rowsOf(db);
    const rep1 = new Replicating([db, `file://${rep}`], { LOG_LEVEL: "info" });
    let out;
    try {
      await rep1.waitForLog(/carries no checksum/);
      // the app writes on (its own process)
      await python(
        `import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for i in range(20):
    with con:
        con.execute("INSERT INTO t (body) VALUES (?)", (f"after the switch {i}",))`,
        db,
      );
      const want = await rowsOf(db);
      assert(want !== before, "the app changed the database");
      await waitFor("the replica to hold the app's new rows", async () => {
        const o = join(dir, `probe-${crypto.randomUUID().slice(0, 6)}.db`);
        const r = await strata(["restore", "-no-progress", "-o", o, `file://${rep}`]);
        const ok = r.code === 0 && (await rowsOf(o)) === want;
        await Deno.remove(o).catch(() => {});
        return ok;
      });
    } finally {
      out = await rep1.stop();
    }
    assertEquals(out.code, 0, out.stderr);
    assert(!/diverged/i.test(out.stderr), `no divergence:\n${out.stderr}`);
    // Litestream's files are all still there, and strata's go on from TXID 12
    const l0 = await client.listFiles(0);
    assert(
      l0.some((f) => f.minTXID === 12n),
      `a file continues at TXID 12: ${l0.map((f) => f.minTXID)}`,
    );
    assertEquals((await client.listFiles(SNAPSHOT_LEVEL)).map((f) => f.maxTXID), [5n]);
    // the state Litestream wrote is still restorable exactly
    const old = join(dir, "old.db");
    await restore(`file://${rep}`, old, ["-txid", "11"]);
    const got = await Deno.readFile(old);
    assert(got.every((b, i) => b === states[10][i]) && got.length === states[10].length);
    // and the latest is verified by strata's checksums again
    const latest = await restore(`file://${rep}`, join(dir, "latest.db"), []);
    assertEquals(latest.checksumVerified, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Litestream v0.5 replica on S3 (its %04x layout, litestream-timestamp metadata), L2 and L1 files overlapping: exact at every TXID and by time", async () => {
  const states = await databaseStates(statements(), { wal: true });
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-ls05-s3-" });
  try {
    const bucket = await s3.createBucket();
    const url = `s3://${bucket}/app?endpoint=${s3.endpoint}`;
    const client = new S3ReplicaClient({
      bucket,
      path: "app",
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: "us-east-1",
      accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
      secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
    });
    const put = (level: number, min: number, max: number) =>
      putStates(client, states, level, min, max, at);
    await put(SNAPSHOT_LEVEL, 1, 5);
    await put(2, 4, 10); // spans the snapshot
    await put(1, 9, 11); // overlaps the L2 file's end
    await put(0, 12, 12);
    let n = 0;
    for (
      const [args, txid] of [
        [[], 12],
        [["-txid", "10"], 10],
        [["-txid", "11"], 11],
        [["-timestamp", new Date(at(11) + 1000).toISOString()], 11],
      ] as [string[], number][]
    ) {
      const out = join(dir, `out-${n++}.db`);
      const r = await strata(["restore", "-json", "-no-progress", "-o", out, ...args, url], {
        env: TEST_CREDENTIALS,
      });
      assertEquals(r.code, 0, r.stderr);
      assertEquals(
        BigInt("0x" + JSON.parse(r.stdout.trim().split("\n").pop()!).txid),
        BigInt(txid),
      );
      const got = await Deno.readFile(out);
      const want = states[txid - 1];
      assert(
        got.length === want.length && got.every((b, i) => b === want[i]),
        `${args.join(" ") || "latest"}: exact`,
      );
    }
  } finally {
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("age switched on over a Litestream v0.5 replica (no checksums) of the same database: a new encrypted lineage, both histories exact", async () => {
  const states = await databaseStates(statements(), { wal: true });
  const dir = await Deno.makeTempDir({ prefix: "strata-ls05-age-" });
  try {
    const { db, rep } = await leftByLitestream(dir, states);
    const identity = await generateIdentity();
    const cfg = join(dir, "age.yml");
    await Deno.writeTextFile(
      cfg,
      `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${rep}\n` +
        `        sync-interval: 100ms\n        age:\n` +
        `          recipients: [${await identityToRecipient(identity)}]\n` +
        `          identities: [${identity}]\n`,
    );
    const r = await strata(["replicate", "-once", "-config", cfg]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /starting a new encrypted lineage/);
    assert(!/diverged|sync failed/i.test(r.stderr), r.stderr);
    // the latest through the keys; Litestream's state by URL without them
    const latest = join(dir, "latest.db");
    const l = await strata(["restore", "-no-progress", "-config", cfg, "-o", latest, db]);
    assertEquals(l.code, 0, l.stderr);
    assertEquals(await rowsOf(latest), await rowsOf(db));
    const old = join(dir, "old.db");
    await restore(`file://${rep}`, old, ["-txid", "11"]);
    const got = await Deno.readFile(old);
    assert(got.every((b, i) => b === states[10][i]) && got.length === states[10].length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * S3 under failures: a fault-injecting proxy between strata and the local S3
 * server (resets, 500s, 503 SlowDown, stalls, truncated responses and request
 * bodies). Operations succeed through retries, no partial object is ever
 * visible, replication catches up and restores are exact.
 */

import { join } from "node:path";
import { S3ReplicaClient, S3RequestError } from "../src/storage/s3_client.ts";
import { LtxDecoder } from "../src/ltx/mod.ts";
import { ReplicaFileNotFoundError } from "../src/storage/client.ts";
import { assert, assertEquals, assertInstanceOf, assertMatch } from "./helpers/assert.ts";
import { assertBytes, failingStream, readAll, streamOf, testBytes } from "./helpers/conformance.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { ALL_FAULTS, type Fault, randomFaults, startFaultProxy } from "./helpers/fault_proxy.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./helpers/strata.ts";

const MIB = 1024 * 1024;

function client(endpoint: string, bucket: string, extra: Record<string, unknown> = {}) {
  return new S3ReplicaClient({
    bucket,
    path: "db",
    endpoint,
    forcePathStyle: true,
    accessKeyId: "k",
    secretAccessKey: "s",
    retryBaseMs: 10,
    retryMaxMs: 200,
    requestTimeoutMs: 1000,
    ...extra,
  });
}

Deno.test("s3 faults: every operation succeeds through resets, 5xx, SlowDown, stalls and truncation", async () => {
  const s3 = await startS3Server();
  const proxy = startFaultProxy(s3.endpoint, 1500);
  const bucket = await s3.createBucket();
  const c = client(proxy.endpoint, bucket, { maxAttempts: 20 });
  const direct = client(s3.endpoint, bucket);
  try {
    // every kind at least once, in turn, then random faults
    const order: Fault[] = [...ALL_FAULTS];
    const random = randomFaults(0.35, 42);
    proxy.choose = () => order.shift() ?? random();

    const written = new Map<string, Uint8Array>();
    const sizes = [0, 1, 5000, 100_000, 12 * MIB + 7]; // the last one is a multipart upload
    for (let i = 0; i < sizes.length; i++) {
      const data = testBytes(sizes[i], i + 1);
      const txid = BigInt(i + 1);
      const w = await c.writeFile(0, txid, txid, streamOf(data), new Date(1_700_000_000_000 + i));
      assertEquals(w.size, data.length);
      written.set(c.key(0, txid, txid), data);
    }
    // listings (with metadata) through the faults
    const list = await c.listFiles(0);
    assertEquals(list.map((f) => f.maxTXID), [1n, 2n, 3n, 4n, 5n]);
    list.forEach((f, i) => assertEquals(f.createdAt.getTime(), 1_700_000_000_000 + i));
    // reads, whole, ranged and the large one in parallel chunks
    for (let i = 0; i < sizes.length; i++) {
      const txid = BigInt(i + 1);
      const got = await readAll(await c.openFile(0, txid, txid));
      assertBytes(got, written.get(c.key(0, txid, txid))!, `read ${txid}`);
    }
    const big = written.get(c.key(0, 5n, 5n))!;
    const r = { offset: 3 * MIB + 11, length: 7 * MIB };
    assertBytes(
      await readAll(await c.openFile(0, 5n, 5n, r)),
      big.subarray(r.offset, r.offset + r.length),
      "ranged read",
    );
    // deletes
    await c.deleteFiles([{ level: 0, minTXID: 2n, maxTXID: 2n }, {
      level: 0,
      minTXID: 9n,
      maxTXID: 9n,
    }]);
    assertEquals((await direct.listFiles(0)).map((f) => f.maxTXID), [1n, 3n, 4n, 5n]);

    for (const f of ALL_FAULTS) assert(proxy.counts[f] > 0, `fault ${f} never injected`);

    // what the server holds is exactly what was written: nothing partial
    for (const f of await direct.listFiles(0)) {
      const key = direct.key(0, f.minTXID, f.maxTXID);
      assertBytes(
        await readAll(await direct.openFile(0, f.minTXID, f.maxTXID)),
        written.get(key)!,
        key,
      );
    }
  } finally {
    await c.close();
    await direct.close();
    await proxy.stop();
    await s3.stop();
  }
});

Deno.test("s3 faults: uploads that cannot finish leave no object; clear errors when retrying is pointless", async () => {
  const s3 = await startS3Server();
  const proxy = startFaultProxy(s3.endpoint, 300);
  const bucket = await s3.createBucket();
  const c = client(proxy.endpoint, bucket, { maxAttempts: 3 });
  const direct = client(s3.endpoint, bucket);
  try {
    // a multipart upload whose parts keep failing is aborted: nothing appears
    proxy.choose = (req) =>
      req.method === "PUT" && /partNumber=2/.test(req.path) ? "truncate-request" : "none";
    const err = await c.writeFile(0, 1n, 1n, streamOf(testBytes(11 * MIB, 3)), new Date()).then(
      () => null,
      (e) => e,
    );
    assertInstanceOf(err, S3RequestError);
    assertMatch(
      err.message,
      /multipart upload s3:\/\/.*\/db\/0000\/0000000000000001-0000000000000001\.ltx/,
    );
    assertEquals(await direct.listFiles(0), []);

    // a single PUT that keeps failing: nothing appears, the error says where and why
    proxy.choose = (req) => (req.method === "PUT" ? "503" : "none");
    const e2 = await c.writeFile(0, 2n, 2n, streamOf(testBytes(1000)), new Date()).then(
      () => null,
      (e) => e,
    );
    assertInstanceOf(e2, S3RequestError);
    assertEquals(e2.status, 503);
    assertMatch(
      e2.message,
      /PutObject s3:\/\/[^ ]+\/db\/0000\/0000000000000002-0000000000000002\.ltx: HTTP 503 SlowDown/,
    );
    assertEquals(await direct.listFiles(0), []);

    // the source failing midway through a multipart upload: aborted, nothing appears
    proxy.choose = () => "none";
    await c.writeFile(0, 3n, 3n, failingStream(testBytes(13 * MIB, 4), MIB), new Date()).then(
      () => {
        throw new Error("must fail");
      },
      () => {},
    );
    assertEquals(await direct.listFiles(0), []);

    // a missing bucket is not retried and says so
    const nb = client(proxy.endpoint, `missing-${Date.now()}`);
    const before = proxy.counts.none;
    const e3 = await nb.listFiles(0).then(() => null, (e) => e);
    assertInstanceOf(e3, S3RequestError);
    assertEquals(e3.status, 404);
    assertMatch(
      e3.message,
      /ListObjectsV2 s3:\/\/missing-\d+\/db\/0000\/: HTTP 404 NoSuchBucket: bucket missing-\d+ does not exist/,
    );
    assertEquals(proxy.counts.none - before, 1, "one request, no retries");
    await nb.close();

    // a missing key is ReplicaFileNotFoundError, not retried either
    await assertMissing(c, proxy);
  } finally {
    await c.close();
    await direct.close();
    await proxy.stop();
    await s3.stop();
  }
});

async function assertMissing(c: S3ReplicaClient, proxy: { counts: Record<Fault, number> }) {
  const before = proxy.counts.none;
  const e = await c.openFile(0, 7n, 7n).then(() => null, (e) => e);
  assertInstanceOf(e, ReplicaFileNotFoundError);
  assertEquals(proxy.counts.none - before, 1);
}

Deno.test("s3 faults: replication through a faulty network catches up; every object is a valid LTX file; restores are exact", async () => {
  const s3 = await startS3Server();
  const proxy = startFaultProxy(s3.endpoint, 1200);
  const dir = await Deno.makeTempDir({ prefix: "strata-s3-faults-" });
  const env = { ...TEST_CREDENTIALS };
  try {
    const bucket = await s3.createBucket();
    const viaProxy = `s3://${bucket}/app?endpoint=${proxy.endpoint}`;
    const direct = `s3://${bucket}/app?endpoint=${s3.endpoint}`;
    const db = join(dir, "app.db");
    const marks = join(dir, "marks.jsonl");
    await runWriter(db, "more", 11, marks);
    const config = join(dir, "strata.yml");
    await Deno.writeTextFile(
      config,
      `dbs:\n  - path: ${db}\n    replica:\n      url: ${viaProxy}\n      sync-interval: 100ms\n`,
    );
    const rep = new Replicating(["-config", config], env);
    try {
      // strata starts and takes its first snapshot; then the network turns bad
      // while the app writes
      await rep.waitForLog(/upload snapshot .*100%/);
      // every other request fails, each kind in turn
      proxy.choose = (
        req,
      ) => (req.n % 2 === 0 ? ALL_FAULTS[(req.n / 2) % ALL_FAULTS.length] : "none");
      await runWriter(db, "main", 12, marks);
      await runWriter(db, "burst", 13, marks);
      await new Promise((r) => setTimeout(r, 1000));
      // the network heals: the replica must catch up while strata runs
      proxy.choose = () => "none";
      const all = await readMarks(marks);
      const want = all[all.length - 1].digest;
      const deadline = Date.now() + 30_000;
      let caughtUp = false;
      while (!caughtUp && Date.now() < deadline) {
        const out = join(dir, `probe-${Date.now()}.db`);
        const r = await strata(["restore", "-o", out, direct], { env });
        caughtUp = r.code === 0 && (await digestOf(out)).digest === want;
        if (!caughtUp) await new Promise((r) => setTimeout(r, 500));
      }
      assert(caughtUp, "the replica did not catch up after the faults stopped");
    } finally {
      const st = await rep.stop();
      assertEquals(st.code, 0, st.stderr);
    }
    const faults = ALL_FAULTS.reduce((n, f) => n + proxy.counts[f], 0);
    assert(faults >= 8, `only ${faults} faults were injected`);

    // every object in the bucket is a complete, valid LTX file
    const c = client(s3.endpoint, bucket, { path: "app" });
    try {
      let n = 0;
      for (let level = 0; level <= 9; level++) {
        for (const f of await c.listFiles(level)) {
          const dec = new LtxDecoder(await c.openFile(level, f.minTXID, f.maxTXID), {
            file: c.key(level, f.minTXID, f.maxTXID),
          });
          const h = await dec.readHeader();
          assertEquals(BigInt(h.minTXID), f.minTXID);
          assertEquals(BigInt(h.maxTXID), f.maxTXID);
          await dec.verify();
          n++;
        }
      }
      assert(n >= 1, "no objects");
    } finally {
      await c.close();
    }

    // Restores by time: the last mark exactly; earlier ones a valid state from
    // no later than the mark (uploads delayed by the faults carry several
    // transactions, so a mark may fall inside one).
    const all = await readMarks(marks);
    for (let i = 1; i < all.length; i++) {
      const m = all[i];
      const p = join(dir, `at-${m.label}.db`);
      const r = await strata(
        ["restore", "-o", p, "-timestamp", new Date(m.time).toISOString(), direct],
        { env },
      );
      assertEquals(r.code, 0, r.stderr);
      const d = await digestOf(p);
      assertEquals(d.integrity, "ok");
      if (i === all.length - 1) assertEquals(d.digest, m.digest, `state at ${m.label}`);
      for (const later of all.slice(i + 1)) {
        assert(
          d.digest !== later.digest || later.digest === m.digest,
          `${m.label} from the future`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await proxy.stop();
    await s3.stop();
  }
});

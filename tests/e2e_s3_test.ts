/**
 * End to end over S3, with real processes: a Python app writes while `strata
 * replicate DB s3://…?endpoint=…` runs as its own process against a local S3
 * server (fauxqs); restores (latest, every recorded moment, a TXID) are
 * compared with what the app recorded, and the bucket holds Litestream v0.5's
 * layout and metadata.
 */

import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./helpers/strata.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { decodeHeader, HEADER_SIZE } from "../src/ltx/mod.ts";
import { readAll } from "./helpers/conformance.ts";

Deno.test("e2e s3: `replicate DB s3://…?endpoint=…` while an app writes; restore latest, by time and by TXID", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-e2e-s3-" });
  const env = { ...TEST_CREDENTIALS };
  try {
    const bucket = await s3.createBucket();
    const url = `s3://${bucket}/app?endpoint=${s3.endpoint}`;
    const db = join(dir, "app.db");
    const marks = join(dir, "marks.jsonl");
    await runWriter(db, "more", 1, marks);
    const rep = new Replicating([db, url], env);
    await rep.waitForLog();
    await runWriter(db, "main", 2, marks);
    const stopped = await rep.stop("SIGINT");
    assertEquals(stopped.code, 0, stopped.stderr);

    const all = await readMarks(marks);
    const source = await digestOf(db);
    assertEquals(source.digest, all[all.length - 1].digest);

    // latest
    const out = join(dir, "latest.db");
    const r = await strata(["restore", "-o", out, url], { env });
    assertEquals(r.code, 0, r.stderr);
    const restored = await digestOf(out);
    assertEquals(restored.digest, source.digest);
    assertEquals(restored.integrity, "ok");

    // By time: the last mark exactly; every mark a consistent state from no
    // later than the mark. (With the default 1 s sync interval one upload may
    // carry the captures on both sides of a mark; the second test restores
    // every mark exactly with a short interval.)
    for (let i = 1; i < all.length; i++) {
      const m = all[i];
      const p = join(dir, `at-${m.label}.db`);
      const rr = await strata(
        ["restore", "-o", p, "-timestamp", new Date(m.time).toISOString(), url],
        { env },
      );
      assertEquals(rr.code, 0, rr.stderr);
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

    // a TXID in the middle
    const ls = await strata(["ltx", "-level", "0", "-json", url], { env });
    assertEquals(ls.code, 0, ls.stderr);
    const files = JSON.parse(ls.stdout) as { maxTXID: string; createdAt: string }[];
    assert(files.length > 3, `only ${files.length} L0 files`);
    const mid = files[Math.floor(files.length / 2)];
    const a = join(dir, "txid.db");
    const rt = await strata(["restore", "-o", a, "-txid", mid.maxTXID, url], { env });
    assertEquals(rt.code, 0, rt.stderr);
    assertEquals((await digestOf(a)).integrity, "ok");
    // ... and equals the restore by that file's creation time (read back from metadata)
    const b = join(dir, "txid-ts.db");
    const rb = await strata(["restore", "-o", b, "-timestamp", mid.createdAt, url], { env });
    assertEquals(rb.code, 0, rb.stderr);
    const later = files.find((f) => f.createdAt === mid.createdAt && f.maxTXID > mid.maxTXID);
    if (!later) assertEquals((await digestOf(a)).digest, (await digestOf(b)).digest);

    // Litestream v0.5's S3 layout: <path>/<level %04x>/<min>-<max>.ltx, with the
    // LTX header's timestamp as litestream-timestamp metadata (RFC 3339)
    const sdk = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "x", secretAccessKey: "y" },
    });
    const { ListObjectsV2Command, HeadObjectCommand } = await import("@aws-sdk/client-s3");
    const listed = await sdk.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "app/" }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    assert(keys.length > 3, `keys: ${keys}`);
    for (const k of keys) assertMatch(k, /^app\/000[0-9]\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/);
    assert(keys.some((k) => k.startsWith("app/0000/")), "L0 files under app/0000/");
    const client = new S3ReplicaClient({
      bucket,
      path: "app",
      endpoint: s3.endpoint,
      forcePathStyle: true,
      accessKeyId: "x",
      secretAccessKey: "y",
    });
    try {
      for (const f of (await client.listFiles(0)).slice(0, 3)) {
        const key = client.key(0, f.minTXID, f.maxTXID);
        const head = await sdk.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const meta = head.Metadata?.["litestream-timestamp"] ?? "";
        assertMatch(meta, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
        const bytes = await readAll(
          await client.openFile(0, f.minTXID, f.maxTXID, { offset: 0, length: HEADER_SIZE }),
        );
        const h = decodeHeader(bytes, key);
        assertEquals(new Date(meta).getTime(), Number(h.timestamp), `metadata of ${key}`);
        assertEquals(f.createdAt.getTime(), Number(h.timestamp), `listed createdAt of ${key}`);
      }
    } finally {
      await client.close();
      sdk.destroy();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

Deno.test("e2e s3 (config keys): restarting continues the replica; every mark restores exactly; a missing bucket is a clear error", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-e2e-s3-" });
  const env = { ...TEST_CREDENTIALS };
  try {
    const bucket = await s3.createBucket();
    const db = join(dir, "app.db");
    const marks = join(dir, "marks.jsonl");
    const config = join(dir, "strata.yml");
    await Deno.writeTextFile(
      config,
      `dbs:
  - path: ${db}
    replicas:
      - type: s3
        bucket: ${bucket}
        path: nested/app
        endpoint: ${s3.endpoint}
        sync-interval: 100ms
`,
    );
    await runWriter(db, "more", 7, marks);
    let rep = new Replicating(["-config", config], env);
    await rep.waitForLog();
    assertEquals((await rep.stop()).code, 0);
    await runWriter(db, "more", 8, marks); // while strata is stopped
    rep = new Replicating(["-config", config], env);
    await rep.waitForLog();
    await runWriter(db, "main", 9, marks);
    const st = await rep.stop();
    assertEquals(st.code, 0, st.stderr);
    const all = await readMarks(marks);
    const out = join(dir, "r.db");
    const r = await strata(["restore", "-config", config, "-o", out, db], { env });
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(out)).digest, all[all.length - 1].digest);
    // every mark while strata ran, by timestamp, exactly (the first mark was
    // taken while strata was stopped: the replica had the state before it)
    for (const m of all.slice(2)) {
      const p = join(dir, `at-${m.label}.db`);
      const rr = await strata(
        ["restore", "-config", config, "-o", p, "-timestamp", new Date(m.time).toISOString(), db],
        { env },
      );
      assertEquals(rr.code, 0, rr.stderr);
      assertEquals((await digestOf(p)).digest, m.digest, `state at ${m.label}`);
    }

    // a bucket that does not exist: the command fails and says so
    const bad = await strata(
      [
        "restore",
        "-o",
        join(dir, "x.db"),
        `s3://no-such-bucket-${Date.now()}/app?endpoint=${s3.endpoint}`,
      ],
      { env },
    );
    assert(bad.code !== 0, "restore from a missing bucket must fail");
    assertMatch(bad.stderr, /no-such-bucket-\d+/);
    assertMatch(bad.stderr, /does not exist|NoSuchBucket/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

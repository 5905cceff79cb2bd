/**
 * The s3 replica client against a local S3 server (fauxqs): the shared
 * conformance suite, Litestream's layout and metadata, multipart and failures.
 */

import {
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import {
  assertBytes,
  conformanceTests,
  readAll,
  streamOf,
  testBytes,
} from "./helpers/conformance.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { startFaultProxy } from "./helpers/fault_proxy.ts";
import { type S3Server, startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";

let server: S3Server | null = null;
let users = 0;

/** A server shared by the tests running at once; the last one out stops it. */
async function acquire(): Promise<S3Server> {
  users++;
  server ??= await startS3Server();
  return server;
}

async function release(): Promise<void> {
  if (--users === 0 && server) {
    const s = server;
    server = null;
    await s.stop();
  }
}

function clientFor(s: S3Server, bucket: string, path = "db"): S3ReplicaClient {
  return new S3ReplicaClient({
    bucket,
    path,
    endpoint: s.endpoint,
    forcePathStyle: true,
    accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
    secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
    retryBaseMs: 20,
  });
}

conformanceTests("s3", async () => {
  const s = await acquire();
  const client = clientFor(s, await s.createBucket());
  return {
    client,
    async close() {
      await client.close();
      await release();
    },
  };
});

async function withServer(fn: (s: S3Server, bucket: string) => Promise<void>): Promise<void> {
  const s = await acquire();
  try {
    await fn(s, await s.createBucket());
  } finally {
    await release();
  }
}

function sdkFor(s: S3Server) {
  return new S3Client({
    endpoint: s.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "x", secretAccessKey: "y" },
  });
}

Deno.test("s3: objects Litestream wrote are listed and read; metadata gives createdAt, else LastModified", async () => {
  await withServer(async (s, bucket) => {
    const sdk = sdkFor(s);
    const c = clientFor(s, bucket, "backups/app");
    try {
      // as Litestream v0.5 writes them: <path>/<level %04x>/<min>-<max>.ltx + litestream-timestamp
      await sdk.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "backups/app/0000/0000000000000001-0000000000000003.ltx",
          Body: testBytes(100, 1),
          Metadata: { "litestream-timestamp": "2025-06-01T10:20:30.123456789Z" },
        }),
      );
      await sdk.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "backups/app/000a/0000000000000004-0000000000000004.ltx", // level 10 would be 000a
          Body: testBytes(5, 2),
        }),
      );
      await sdk.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "backups/app/0009/0000000000000001-0000000000000009.ltx",
          Body: testBytes(7, 3), // no metadata: LastModified stands in
        }),
      );
      // not LTX files, or not at this level: ignored
      for (
        const k of [
          "backups/app/0000/notes.txt",
          "backups/app/0000/sub/0000000000000005-0000000000000005.ltx",
        ]
      ) {
        await sdk.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: "x" }));
      }
      const l0 = await c.listFiles(0);
      assertEquals(l0.length, 1);
      assertEquals([l0[0].minTXID, l0[0].maxTXID, l0[0].size], [1n, 3n, 100]);
      assertEquals(l0[0].createdAt.toISOString(), "2025-06-01T10:20:30.123Z");
      assertBytes(
        await readAll(await c.openFile(0, 1n, 3n)),
        testBytes(100, 1),
        "litestream object",
      );
      const l9 = await c.listFiles(9);
      assertEquals(l9.length, 1);
      assert(Math.abs(l9[0].createdAt.getTime() - Date.now()) < 60_000, "LastModified fallback");
      assertEquals((await c.listFiles(10)).map((f) => f.maxTXID), [4n]);
      // what strata writes, Litestream's way
      const t = new Date("2026-01-02T03:04:05.600Z");
      await c.writeFile(1, 5n, 6n, streamOf(testBytes(10)), t);
      const head = await sdk.send(
        new HeadObjectCommand({
          Bucket: bucket,
          Key: "backups/app/0001/0000000000000005-0000000000000006.ltx",
        }),
      );
      assertEquals(head.Metadata?.["litestream-timestamp"], "2026-01-02T03:04:05.6Z");
      assertEquals(head.ContentLength, 10);
    } finally {
      await c.close();
      sdk.destroy();
    }
  });
});

Deno.test('s3: an empty path keeps Litestream\'s keys at the bucket root ("/0000/…")', async () => {
  await withServer(async (s, bucket) => {
    const c = clientFor(s, bucket, "");
    const sdk = sdkFor(s);
    try {
      await c.writeFile(0, 1n, 1n, streamOf(testBytes(33)), new Date());
      const keys = (await sdk.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents?.map((
        o,
      ) => o.Key);
      assertEquals(keys, ["/0000/0000000000000001-0000000000000001.ltx"]);
      assertEquals((await c.listFiles(0)).map((f) => f.size), [33]);
      assertBytes(await readAll(await c.openFile(0, 1n, 1n)), testBytes(33), "root object");
    } finally {
      await c.close();
      sdk.destroy();
    }
  });
});

Deno.test("s3: request economy: creation times are read once per object; seek skips in the listing", async () => {
  await withServer(async (s, bucket) => {
    const proxy = startFaultProxy(s.endpoint);
    const requests: string[] = [];
    proxy.choose = (r) => {
      requests.push(`${r.method} ${r.path}`);
      return "none";
    };
    const writer = clientFor(s, bucket);
    const c = clientFor({ ...s, endpoint: proxy.endpoint }, bucket);
    try {
      for (let i = 1n; i <= 5n; i++) {
        await writer.writeFile(0, i, i, streamOf(testBytes(10)), new Date());
      }
      await c.listFiles(0);
      assertEquals(requests.filter((r) => r.startsWith("GET")).length, 1, "one listing");
      assertEquals(requests.filter((r) => r.startsWith("HEAD")).length, 5, "a HEAD per object");
      requests.length = 0;
      await c.listFiles(0);
      assertEquals(requests.length, 1, "known objects: the listing only");
      requests.length = 0;
      await c.listFiles(0, 4n, { metadata: false });
      assertEquals(requests.length, 1);
      assertMatch(requests[0], /start-after=db%2F0000%2F0000000000000004/);
      // what this client writes it knows without a HEAD
      requests.length = 0;
      await c.writeFile(0, 6n, 6n, streamOf(testBytes(10)), new Date());
      await c.listFiles(0);
      assertEquals(requests.filter((r) => r.startsWith("HEAD")).length, 0);
    } finally {
      await c.close();
      await writer.close();
      await proxy.stop();
    }
  });
});

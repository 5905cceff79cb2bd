/**
 * S3 server-side encryption, as Litestream's `sse-*` settings ask for it:
 * the settings are checked as Litestream checks them, and every request
 * carries the encryption headers (SSE-C on writes and reads, including the
 * multipart ones and metadata HEADs; SSE-KMS on writes), seen on the wire
 * by a proxy in front of a real S3 server (fauxqs).
 */

import { join } from "node:path";
import { createHash } from "node:crypto";
import { ConfigError, parseConfig } from "../src/config/config.ts";
import { s3ClientOptions, type S3ReplicaConfig } from "../src/config/s3_config.ts";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";
import { startS3Server } from "./helpers/fauxqs.ts";
import { startFaultProxy } from "./helpers/fault_proxy.ts";

const KEY = btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i * 7 + 1)));

function replicaOf(yaml: string): S3ReplicaConfig {
  return parseConfig(`dbs:\n  - path: /a.db\n    replica:\n${yaml}`, "t.yml").dbs[0]
    .replicas[0] as S3ReplicaConfig;
}

Deno.test("sse settings: SSE-C (key, key file, query form) and SSE-KMS, checked as Litestream checks them", async () => {
  const c = replicaOf(`      url: s3://b/p\n      sse-customer-key: ${KEY}\n`);
  const raw = Uint8Array.from(atob(KEY), (ch) => ch.charCodeAt(0));
  assertEquals(c.sse, {
    customerAlgorithm: "AES256",
    customerKey: KEY,
    customerKeyMD5: createHash("md5").update(raw).digest("base64"),
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "key"), KEY + "\n");
    assertEquals(
      replicaOf(`      url: s3://b/p\n      sse-customer-key-path: ${join(dir, "key")}\n`).sse,
      c.sse,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(
    replicaOf(`      url: "s3://b/p?sseCustomerKey=${encodeURIComponent(KEY)}"\n`).sse,
    c.sse,
  );
  assertEquals(replicaOf(`      url: s3://b/p\n      sse-kms-key-id: alias/backups\n`).sse, {
    kmsKeyId: "alias/backups",
  });
  const bad: [string, RegExp][] = [
    [
      `      url: s3://b/p\n      sse-customer-key: ${btoa("short")}\n`,
      /must be a 256-bit key .* got 5 bytes/,
    ],
    [`      url: s3://b/p\n      sse-customer-key: "%%%"\n`, /"sse-customer-key" is not base64/],
    [
      `      url: s3://b/p\n      sse-customer-key: ${KEY}\n      sse-customer-algorithm: AES128\n`,
      /must be AES256/,
    ],
    [
      `      url: s3://b/p\n      sse-customer-key: ${KEY}\n      sse-kms-key-id: k\n`,
      /exclude each other/,
    ],
    [`      url: s3://b/p\n      sse-customer-algorithm: AES256\n`, /needs "sse-customer-key"/],
  ];
  for (const [yaml, re] of bad) {
    const e = assertThrows(() => replicaOf(yaml), ConfigError);
    assertMatch(e.message, re);
  }
});

Deno.test("sse on the wire: SSE-C headers on every write and read (multipart too), SSE-KMS on writes", async () => {
  const s3 = await startS3Server();
  const proxy = startFaultProxy(s3.endpoint);
  const seen: { method: string; path: string; headers: string[] }[] = [];
  proxy.choose = (r) => {
    seen.push(r);
    return "none";
  };
  try {
    for (const mode of ["ssec", "kms"] as const) {
      const bucket = await s3.createBucket();
      const cfg = replicaOf(
        `      type: s3\n      bucket: ${bucket}\n      path: db\n      endpoint: ${proxy.endpoint}\n      region: us-east-1\n      force-path-style: true\n      access-key-id: k\n      secret-access-key: s\n      part-size: 5MiB\n` +
          (mode === "ssec"
            ? `      sse-customer-key: ${KEY}\n`
            : `      sse-kms-key-id: alias/backups\n`),
      );
      const client = new S3ReplicaClient({ ...s3ClientOptions(cfg), retryBaseMs: 10 });
      seen.length = 0;
      const small = new Uint8Array(1000).fill(7);
      const big = new Uint8Array(6 * 1024 * 1024).fill(9); // a multipart upload
      await client.writeFile(0, 1n, 1n, ReadableStream.from([small]), new Date());
      await client.writeFile(0, 2n, 2n, ReadableStream.from([big]), new Date());
      const back: Uint8Array[] = [];
      for await (const ch of await client.openFile(0, 1n, 1n)) back.push(ch);
      assertEquals(back.reduce((n, b) => n + b.length, 0), small.length);
      const has = (r: { headers: string[] }, name: string) =>
        r.headers.some((h) => h.toLowerCase().startsWith(name + ":"));
      const writes = seen.filter((r) =>
        r.method === "PUT" || (r.method === "POST" && /uploads/.test(r.path))
      );
      const reads = seen.filter((r) =>
        r.method === "GET" && !/list-type|\?$/.test(r.path) && /\.ltx/.test(r.path)
      );
      assert(writes.length >= 3, `writes seen: ${writes.length}`);
      assert(reads.length >= 1, `reads seen: ${reads.length}`);
      if (mode === "ssec") {
        for (const r of [...writes, ...reads]) {
          assert(
            has(r, "x-amz-server-side-encryption-customer-algorithm"),
            `${r.method} ${r.path}: SSE-C algorithm`,
          );
          assert(
            has(r, "x-amz-server-side-encryption-customer-key"),
            `${r.method} ${r.path}: SSE-C key`,
          );
          assert(
            has(r, "x-amz-server-side-encryption-customer-key-md5"),
            `${r.method} ${r.path}: SSE-C key MD5`,
          );
        }
      } else {
        const creating = writes.filter((r) =>
          r.method === "PUT" && !/partNumber/.test(r.path) || r.method === "POST"
        );
        assert(creating.length >= 2, "a PUT and a multipart creation");
        for (const r of creating) {
          assert(
            r.headers.some((h) => /^x-amz-server-side-encryption:\s*aws:kms/i.test(h)),
            `${r.method} ${r.path}: SSE-KMS`,
          );
          assert(
            has(r, "x-amz-server-side-encryption-aws-kms-key-id"),
            `${r.method} ${r.path}: KMS key id`,
          );
        }
      }
    }
  } finally {
    await proxy.stop();
    await s3.stop();
  }
});

Deno.test("sse settings never silently drop: on a non-s3 replica, or misspelt, they are refused", () => {
  const cases: [string, RegExp][] = [
    [
      `      url: gs://bucket/p\n      sse-customer-key: ${KEY}\n`,
      /"sse-customer-key" applies to s3 replicas only/,
    ],
    [`      url: s3://b/p\n      sse-kms-key: k\n`, /unknown encryption key "sse-kms-key"/],
  ];
  for (const [yaml, re] of cases) {
    const e = assertThrows(() => replicaOf(yaml), ConfigError);
    assertMatch(e.message, re);
  }
});

/** s3 replica URLs and config keys: every provider form, precedence, clear errors. */

import { assert, assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";
import { parseReplicaUrl, ReplicaUrlError } from "../src/config/replica_url.ts";
import { ConfigError, parseConfig } from "../src/config/config.ts";
import {
  detectProvider,
  normalizeEndpoint,
  parseS3Url,
  type S3ReplicaConfig,
} from "../src/config/s3_config.ts";
import { clientFor } from "../src/cli/common.ts";
import { formatRFC3339Nano, parseRFC3339Nano, S3ReplicaClient } from "../src/storage/s3_client.ts";

function pick(c: S3ReplicaConfig) {
  return {
    bucket: c.bucket,
    path: c.path,
    region: c.region,
    endpoint: c.endpoint,
    forcePathStyle: c.forcePathStyle,
    provider: c.provider,
  };
}

Deno.test("s3 URL: AWS forms", () => {
  assertEquals(pick(parseS3Url("s3://mybucket/db")), {
    bucket: "mybucket",
    path: "db",
    region: undefined,
    endpoint: undefined,
    forcePathStyle: false,
    provider: "aws",
  });
  assertEquals(parseS3Url("s3://mybucket").path, "");
  assertEquals(parseS3Url("s3://mybucket/a//b/./c/").path, "a/b/c");
  assertEquals(pick(parseS3Url("s3://mybucket.s3.amazonaws.com/db")).bucket, "mybucket");
  assertEquals(pick(parseS3Url("s3://mybucket.s3.eu-west-1.amazonaws.com/db")), {
    bucket: "mybucket",
    path: "db",
    region: "eu-west-1",
    endpoint: undefined,
    forcePathStyle: false,
    provider: "aws",
  });
  assertEquals(parseS3Url("s3://mybucket/db?region=us-west-2").region, "us-west-2");
  const ap = parseS3Url("s3://arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap/backups/db");
  assertEquals(ap.bucket, "arn:aws:s3:us-west-2:123456789012:accesspoint/my-ap");
  assertEquals(ap.path, "backups/db");
  assertEquals(ap.region, "us-west-2");
  // parseReplicaUrl routes s3:// here
  assertEquals(parseReplicaUrl("s3://mybucket/db").type, "s3");
});

Deno.test("s3 URL: custom endpoints default to path style; forcePathStyle=false wins", () => {
  const c = parseS3Url("s3://bkt/db?endpoint=http://127.0.0.1:9000&region=local");
  assertEquals(pick(c), {
    bucket: "bkt",
    path: "db",
    region: "local",
    endpoint: "http://127.0.0.1:9000",
    forcePathStyle: true,
    provider: "minio",
  });
  assertEquals(parseS3Url("s3://bkt/db?endpoint=localhost:9000").endpoint, "http://localhost:9000");
  assertEquals(
    parseS3Url("s3://bkt/db?endpoint=storage.example.com").endpoint,
    "https://storage.example.com",
  );
  assertEquals(
    parseS3Url("s3://bkt/db?endpoint=https://storage.example.com&forcePathStyle=false")
      .forcePathStyle,
    false,
  );
  assertEquals(
    parseS3Url("s3://bkt/db?endpoint=https://storage.example.com&force-path-style=false")
      .forcePathStyle,
    false,
  );
  const all = parseS3Url(
    "s3://bkt/db?endpoint=https://s.example.com&skipVerify=true&storageClass=standard_ia&partSize=8388608&concurrency=3",
  );
  assertEquals(all.skipVerify, true);
  assertEquals(all.storageClass, "STANDARD_IA");
  assertEquals(all.partSize, 8 * 1024 * 1024);
  assertEquals(all.concurrency, 3);
  assertEquals(parseS3Url("s3://bkt/db?part-size=16MiB").partSize, 16 * 1024 * 1024);
  // MinIO style host: bucket.host:port
  assertEquals(pick(parseS3Url("s3://bkt.minio.local:9000/db")), {
    bucket: "bkt",
    path: "db",
    region: "us-east-1",
    endpoint: "http://minio.local:9000",
    forcePathStyle: true,
    provider: "minio",
  });
});

Deno.test("s3 URL: provider host forms and endpoints get their defaults", () => {
  const cases: [string, Partial<S3ReplicaConfig>][] = [
    ["s3://bkt.nyc3.digitaloceanspaces.com/db", {
      bucket: "bkt",
      region: "nyc3",
      endpoint: "https://nyc3.digitaloceanspaces.com",
      forcePathStyle: false,
      provider: "digitalocean-spaces",
    }],
    ["s3://bkt/db?endpoint=nyc3.digitaloceanspaces.com", {
      endpoint: "https://nyc3.digitaloceanspaces.com",
      forcePathStyle: true,
      provider: "digitalocean-spaces",
    }],
    ["s3://bkt.s3.us-west-002.backblazeb2.com/db", {
      bucket: "bkt",
      region: "us-west-002",
      endpoint: "https://s3.us-west-002.backblazeb2.com",
      forcePathStyle: true,
      provider: "backblaze-b2",
    }],
    ["s3://bkt.s3.filebase.com/db", {
      bucket: "bkt",
      endpoint: "https://s3.filebase.com",
      forcePathStyle: true, // Filebase needs path style
      provider: "filebase",
    }],
    ["s3://bkt.s3.fr-par.scw.cloud/db", {
      bucket: "bkt",
      region: "fr-par",
      endpoint: "https://s3.fr-par.scw.cloud",
      forcePathStyle: false,
      provider: "scaleway",
    }],
    ["s3://bkt/db?endpoint=https://acct123.r2.cloudflarestorage.com", {
      endpoint: "https://acct123.r2.cloudflarestorage.com",
      provider: "cloudflare-r2",
      concurrency: 2,
    }],
    ["s3://bkt/db?endpoint=https://fly.storage.tigris.dev", {
      provider: "tigris",
      requireContentMD5: false,
    }],
    ["s3://bkt/db?endpoint=https://t3.storage.dev", { provider: "tigris" }],
    ["s3://bkt/db?endpoint=https://fsn1.your-objectstorage.com", {
      provider: "hetzner",
      forcePathStyle: true,
    }],
    ["s3://bkt/db?endpoint=https://proj.supabase.co/storage/v1/s3&forcePathStyle=false", {
      endpoint: "https://proj.supabase.co/storage/v1/s3",
      provider: "supabase",
      forcePathStyle: false, // the user's setting wins
    }],
    ["s3://bkt/db?endpoint=https://acct.r2.cloudflarestorage.com&concurrency=8", {
      concurrency: 8, // the user's setting wins
    }],
  ];
  for (const [url, want] of cases) {
    const got = parseS3Url(url) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(want)) assertEquals(got[k], v, `${url}: ${k}`);
  }
  assertEquals(parseS3Url("s3://bkt/db").requireContentMD5, true);
  assertEquals(detectProvider("https://s3.eu-central-1.amazonaws.com"), "aws");
  assertEquals(detectProvider("https://objects.example.com"), undefined);
  assertEquals(detectProvider("http://10.0.0.5:9000"), "minio");
  assertEquals(normalizeEndpoint("https://s3.example.com/"), "https://s3.example.com");
});

Deno.test("s3 URL: bad input is a clear error", () => {
  const bad: [string, string][] = [
    ["s3://", "no bucket"],
    ["s3:///db", "no bucket"],
    ["s3://127.0.0.1:9000/db", "no bucket"],
    ["s3://bkt/db?endpoint=ftp://x.example.com", "must be http:// or https://"],
    ["s3://bkt/db?endpoint=http://", "not a valid URL"],
    ["s3://bkt/db?endpoint=https://user:pw@x.example.com", "must not contain credentials"],
    ["s3://bkt/db?partSize=1000", "between 5MiB"],
    ["s3://bkt/db?partSize=abc", "size in bytes"],
    ["s3://bkt/db?part-size=10TB", "size in bytes"],
    ["s3://bkt/db?concurrency=0", "integer from 1 to 1000"],
    ["s3://bkt/db?forcePathStyle=maybe", "true or false"],
    ["s3://bkt/db?sseColor=abc", `unknown query parameter "sseColor"`],
    ["s3://bkt/db?sseCustomerKey=c2hvcnQ=", "must be a 256-bit key"],
    ["s3://bkt/db?region=a&region=b", "given twice"],
    ["s3://key:secret@bkt/db", "take no credentials"],
    ["s3://bkt/db#frag", "no fragment"],
    ["s3://arn:aws:s3:us-east-1:1:bucket/x", "access point"],
  ];
  // secrets in a bad URL never reach the message
  const e1 = assertThrows(
    () => parseReplicaUrl("s3://bkt/db?sseCustomerKey=c2VjcmV0LXZhbHVl"),
    ReplicaUrlError,
  );
  assert(!e1.message.includes("c2VjcmV0LXZhbHVl"), e1.message);
  assertMatch(e1.message, /sseCustomerKey=\*\*\*/);
  const e2 = assertThrows(() => parseReplicaUrl("webdav://u:hunter2@/x"), ReplicaUrlError);
  assert(!e2.message.includes("hunter2"), e2.message);
  for (const [url, msg] of bad) {
    const e = assertThrows(() => parseReplicaUrl(url), ReplicaUrlError);
    assertMatch(e.message, new RegExp(msg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), url);
    assertMatch(e.message, /^bad replica URL "s3:/, url);
  }
});

function cfg(replica: string): string {
  return `dbs:\n  - path: /data/app.db\n    replicas:\n${replica}`;
}

Deno.test("s3 config keys: as Litestream, keys override the URL", () => {
  const c = parseConfig(
    cfg(`      - type: s3
        bucket: mybucket
        path: /backups/app/
        region: eu-west-1
        endpoint: minio.internal:9000
        access-key-id: AKIA
        secret-access-key: SECRET
        skip-verify: true
        storage-class: STANDARD_IA
        part-size: 10MiB
        concurrency: 4
        sync-interval: 5s
`),
    "t.yml",
  );
  const r = c.dbs[0].replicas[0] as S3ReplicaConfig;
  assertEquals(r.type, "s3");
  assertEquals(r.bucket, "mybucket");
  assertEquals(r.path, "backups/app");
  assertEquals(r.region, "eu-west-1");
  assertEquals(r.endpoint, "https://minio.internal:9000");
  assertEquals(r.forcePathStyle, true); // an endpoint means path style
  assertEquals(r.provider, "minio");
  assertEquals(r.accessKeyId, "AKIA");
  assertEquals(r.secretAccessKey, "SECRET");
  assertEquals(r.skipVerify, true);
  assertEquals(r.storageClass, "STANDARD_IA");
  assertEquals(r.partSize, 10 * 1024 * 1024);
  assertEquals(r.concurrency, 4);
  assertEquals(r.syncIntervalMs, 5000);

  const u = parseConfig(
    cfg(`      - url: s3://bkt/db?endpoint=http://127.0.0.1:9000&region=a
        region: b
        force-path-style: false
`),
    "t.yml",
  ).dbs[0].replicas[0] as S3ReplicaConfig;
  assertEquals(u.region, "b");
  assertEquals(u.forcePathStyle, false);
  assertEquals(u.endpoint, "http://127.0.0.1:9000");
  const single = parseConfig(
    `dbs:\n  - path: /a.db\n    replica:\n      url: s3://bkt/x\n`,
    "t.yml",
  ).dbs[0].replicas[0] as S3ReplicaConfig;
  assertEquals(single.bucket, "bkt");
  // the command line's clientFor builds an S3 client (no request is made)
  const client = clientFor(u);
  assertEquals(client instanceof S3ReplicaClient, true);
  assertEquals(client.type, "s3");
  assertMatch(client.location, /^s3:\/\/bkt\/db \(http:\/\/127\.0\.0\.1:9000\)$/);
});

Deno.test("s3 config keys: bad values name the key and its line", () => {
  const cases: [string, RegExp][] = [
    [`      - type: s3\n        path: db\n`, /t\.yml:4: .*bucket required/],
    [
      `      - type: s3\n        bucket: b\n        part-size: 1MB\n`,
      /t\.yml:6: "part-size" must be between 5MiB/,
    ],
    [
      `      - type: s3\n        bucket: b\n        concurrency: lots\n`,
      /t\.yml:6: "concurrency" must be an integer/,
    ],
    [
      `      - type: s3\n        bucket: b\n        endpoint: "ftp://x"\n`,
      /t\.yml:6: .*must be http:\/\/ or https:\/\//,
    ],
    [
      `      - type: s3\n        bucket: b\n        force-path-style: sure\n`,
      /t\.yml:6: "force-path-style" must be true or false/,
    ],
    [
      `      - type: s3\n        bucket: b\n        access-key-id: AKIA\n`,
      /t\.yml:6: "access-key-id" needs "secret-access-key" too/,
    ],
    [`      - url: s3://b/db\n        bucket: c\n`, /t\.yml:5: use "url" or "bucket", not both/],
    [`      - url: s3://b/db\n        path: x\n`, /t\.yml:5: use "url" or "path", not both/],
    [
      `      - url: s3://b/db?bogus=1\n`,
      /t\.yml:4: bad replica URL .*unknown query parameter "bogus"/,
    ],
    [
      `      - type: s3\n        bucket: b\n        host: x\n`,
      /t\.yml:6: key "host" does not apply to s3 replicas/,
    ],
    [`      - url: s3://b/db\n        type: file\n`, /t\.yml:5: "type" file contradicts url/],
  ];
  for (const [replica, re] of cases) {
    const e = assertThrows(() => parseConfig(cfg(replica), "t.yml"), ConfigError);
    assertMatch(e.message, re);
  }
});

Deno.test("s3 timestamps: Go's RFC3339Nano, read back with up to nine fraction digits", () => {
  assertEquals(formatRFC3339Nano(new Date("2026-03-04T05:06:07.891Z")), "2026-03-04T05:06:07.891Z");
  assertEquals(formatRFC3339Nano(new Date("2026-03-04T05:06:07.890Z")), "2026-03-04T05:06:07.89Z");
  assertEquals(formatRFC3339Nano(new Date("2026-03-04T05:06:07.000Z")), "2026-03-04T05:06:07Z");
  const p = parseRFC3339Nano;
  assertEquals(p("2026-03-04T05:06:07.123456789Z")?.toISOString(), "2026-03-04T05:06:07.123Z");
  assertEquals(p("2026-03-04T05:06:07Z")?.toISOString(), "2026-03-04T05:06:07.000Z");
  assertEquals(p("2026-03-04T07:06:07.5+02:00")?.toISOString(), "2026-03-04T05:06:07.500Z");
  assertEquals(p("yesterday"), null);
});

Deno.test("a type that contradicts a url with a password names the url without the password", () => {
  const e = assertThrows(
    () =>
      parseConfig(
        "dbs:\n  - path: /a.db\n    replica:\n      type: file\n      url: sftp://bob:hunter2@host/path\n",
        "t.yml",
      ),
    ConfigError,
  );
  assertMatch(e.message, /"type" file contradicts url sftp:\/\/bob:\*\*\*@host\/path/);
  assert(!e.message.includes("hunter2"), e.message);
});

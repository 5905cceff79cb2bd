/**
 * A Litestream setup works unchanged (issue 18): where the config is found,
 * and what becomes of the keys Litestream accepts.
 */

import { ConfigError, defaultConfigPath, parseConfig } from "../src/config/config.ts";
import { assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";

Deno.test("config path: $STRATA_CONFIG, $LITESTREAM_CONFIG, /etc/strata.yml, /etc/litestream.yml", () => {
  const none = () => false;
  const only = (p: string) => (q: string) => q === p;
  assertEquals(
    defaultConfigPath({ STRATA_CONFIG: "/a.yml", LITESTREAM_CONFIG: "/b.yml" }, none),
    "/a.yml",
  );
  assertEquals(defaultConfigPath({ LITESTREAM_CONFIG: "/b.yml" }, none), "/b.yml");
  assertEquals(defaultConfigPath({}, only("/etc/litestream.yml")), "/etc/litestream.yml");
  assertEquals(defaultConfigPath({}, (p) => p.startsWith("/etc/")), "/etc/strata.yml");
  // neither exists: the error names strata's own default
  assertEquals(defaultConfigPath({}, none), "/etc/strata.yml");
});

Deno.test("a Litestream v0.3 config starts strata: top-level credentials, v0.3 replica keys warned about", () => {
  const cfg = parseConfig(
    `access-key-id: AKIAEXAMPLE
secret-access-key: secretexample
dbs:
  - path: /data/app.db
    max-checkpoint-page-count: 10000
    replicas:
      - url: s3://bucket/app
        retention: 72h
        retention-check-interval: 1h
        snapshot-interval: 24h
        validation-interval: 6h
`,
    "v03.yml",
  );
  const r = cfg.dbs[0].replicas[0] as {
    type: string;
    accessKeyId?: string;
    secretAccessKey?: string;
  };
  assertEquals(r.type, "s3");
  assertEquals([r.accessKeyId, r.secretAccessKey], ["AKIAEXAMPLE", "secretexample"]);
  const w = cfg.warnings!.join("\n");
  // v0.3's per-replica retention is kept (as the global snapshot retention), never shortened
  assertEquals(cfg.compaction.snapshotRetentionMs, 72 * 3_600_000);
  assertMatch(
    w,
    /v03\.yml:\d+: key "retention" in a replica \(Litestream v0\.3\) is kept as the global snapshot retention: 72h/,
  );
  for (
    const k of [
      "max-checkpoint-page-count",
      "retention-check-interval",
      "snapshot-interval",
    ]
  ) {
    assertMatch(w, new RegExp(`v03\\.yml:\\d+: key "${k}" in .* is ignored`));
  }
});

Deno.test("a Litestream v0.5 config starts strata: replica defaults at the top, a dbs snapshot, logging, ignored keys", () => {
  const cfg = parseConfig(
    `region: eu-west-1
endpoint: http://127.0.0.1:9000
sync-interval: 5s
mcp-addr: ":3001"
heartbeat-url: https://example.com/ping
heartbeat-interval: 5m
shutdown-sync-interval: 500ms
shutdown-sync-timeout: 0
validation:
  interval: 12h
verify-compaction: true
logging:
  level: warning
  type: pretty
  source: true
dbs:
  - path: sqlite:///data/app.db
    snapshot:
      interval: 1h
      retention: 12h
    meta-dir: /var/lib/meta
    max-sync-wal-bytes: 1000000
    replica:
      url: s3://bucket/app
      sign-payload: true
      max-sync-ltx-files: 100
      auto-recover: true
  - path: ~/other.db
    replica:
      type: file
      path: /backups/other
      sync-interval: 1s
`,
    "v05.yml",
  );
  assertEquals(cfg.dbs[0].path, "/data/app.db");
  assertEquals(cfg.dbs[1].path, `${Deno.env.get("HOME")}/other.db`);
  const s3 = cfg.dbs[0].replicas[0] as {
    region?: string;
    endpoint?: string;
    syncIntervalMs?: number;
  };
  assertEquals([s3.region, s3.endpoint, s3.syncIntervalMs], [
    "eu-west-1",
    "http://127.0.0.1:9000",
    5000,
  ]);
  assertEquals(cfg.dbs[1].replicas[0].syncIntervalMs, 1000, "its own sync-interval wins");
  assertEquals([cfg.compaction.snapshotIntervalMs, cfg.compaction.snapshotRetentionMs], [
    3_600_000,
    43_200_000,
  ]);
  assertEquals(cfg.logging, { level: "warn", type: "text" });
  assertEquals(cfg.heartbeat, { url: "https://example.com/ping", intervalMs: 300_000 });
  assertEquals(cfg.shutdownSyncTimeoutMs, 0, "0: one final sync attempt without a time limit");
  const w = cfg.warnings!.join("\n");
  for (
    const k of [
      "mcp-addr",
      "shutdown-sync-interval",
      "validation",
      "verify-compaction",
      "source",
      "meta-dir",
      "max-sync-wal-bytes",
      "sign-payload",
      "max-sync-ltx-files",
      "auto-recover",
    ]
  ) assertMatch(w, new RegExp(`key "${k}" in .* is ignored`), k);
});

Deno.test("unknown keys: warned about and left out, but a likely typo or a misplaced key is refused by name", () => {
  const ok = parseConfig(
    "flavour: vanilla\ndbs:\n  - path: /a.db\n    colour: blue\n    replica:\n      path: /b\n",
    "t.yml",
  );
  assertMatch(
    ok.warnings!.join("\n"),
    /t\.yml:1: unknown key "flavour" in the top level is ignored/,
  );
  assertMatch(ok.warnings!.join("\n"), /t\.yml:4: unknown key "colour" in a dbs entry is ignored/);
  const cases: [string, RegExp][] = [
    [
      "dbs:\n  - path: /a.db\n    replica:\n      path: /b\n      sync-intervl: 1s\n",
      /t\.yml:5: unknown key "sync-intervl" .*did you mean "sync-interval"/,
    ],
    [
      "dbs:\n  - pth: /a.db\n    replica:\n      path: /b\n",
      /t\.yml:2: unknown key "pth" .*did you mean "path"/,
    ],
    [
      "dbs:\n  - path: /a.db\n    bucket: b\n    replica:\n      path: /b\n",
      /t\.yml:3: key "bucket" does not go in a dbs entry: it goes in a replica entry/,
    ],
    [
      "snapshot:\n  interval: 1h\ndbs:\n  - path: /a.db\n    snapshot:\n      interval: 2h\n    replica:\n      path: /b\n",
      /t\.yml:5: "snapshot" differs from the one at line 1/,
    ],
  ];
  for (const [text, re] of cases) {
    const e = assertThrows(() => parseConfig(text, "t.yml"), ConfigError);
    assertMatch(e.message, re);
  }
});

Deno.test("no dbs: only with the control socket (databases come through strata register)", () => {
  const cfg = parseConfig(
    "socket:\n  enabled: true\n  path: /tmp/x.sock\n  permissions: 0640\n",
    "t.yml",
  );
  assertEquals([cfg.dbs.length, cfg.dirs.length], [0, 0]);
  // unquoted 0640 is octal, as Litestream (YAML 1.1) reads it
  assertEquals(cfg.socket.permissions, 0o640);
  const e = assertThrows(() => parseConfig("addr: :9090\n", "t.yml"), ConfigError);
  assertMatch(e.message, /"dbs" must list at least one database \(or socket\.enabled/);
});

Deno.test("oss replicas (Alibaba OSS) go through its S3 API, laid out as Litestream's", () => {
  const cfg = parseConfig(
    `dbs:
  - path: /a.db
    replica:
      url: oss://bucket.oss-cn-shanghai.aliyuncs.com/app/db
  - path: /b.db
    replica:
      type: oss
      bucket: other
      path: b
      access-key-id: K
      secret-access-key: S
`,
    "t.yml",
  );
  const [a, b] = cfg.dbs.map((d) =>
    d.replicas[0] as {
      type: string;
      bucket: string;
      path: string;
      region: string;
      endpoint: string;
      forcePathStyle: boolean;
    }
  );
  assertEquals(
    [a.type, a.bucket, a.path, a.region, a.endpoint, a.forcePathStyle],
    ["s3", "bucket", "app/db", "cn-shanghai", "https://oss-cn-shanghai.aliyuncs.com", false],
  );
  assertEquals([b.bucket, b.region, b.endpoint], [
    "other",
    "cn-hangzhou",
    "https://oss-cn-hangzhou.aliyuncs.com",
  ]);
  const e = assertThrows(
    () =>
      parseConfig(
        "dbs:\n  - path: /a.db\n    replica:\n      url: oss://oss-cn-shanghai.aliyuncs.com/x\n",
        "t.yml",
      ),
    ConfigError,
  );
  assertMatch(e.message, /no bucket before the OSS host/);
});

Deno.test("format: litestream is a key of every replica type, s3 included", () => {
  const cfg = parseConfig(
    "dbs:\n  - path: /a.db\n    replica:\n      url: s3://bucket/app\n      format: litestream\n",
    "t.yml",
  );
  assertEquals(cfg.dbs[0].replicas[0].format, "litestream");
});

/** sftp, abs and gs replica URLs and config keys: Litestream's forms, and clear errors. */

import { assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";
import { ConfigError, parseConfig, parseReplicaUrl, ReplicaUrlError } from "../src/config/mod.ts";

function replicaOf(yaml: string) {
  return parseConfig(`dbs:\n  - path: /data/app.db\n    replica:\n${yaml}`, "t.yml").dbs[0]
    .replicas[0];
}

Deno.test("sftp URLs: user, password, host, port, absolute path", () => {
  assertEquals(parseReplicaUrl("sftp://alice@nas.local/backups/app"), {
    type: "sftp",
    host: "nas.local",
    port: 22,
    user: "alice",
    password: undefined,
    path: "/backups/app",
  });
  const c = parseReplicaUrl("sftp://bob:s%40cret@[::1]:2222//srv//db/");
  assertEquals(c.type, "sftp");
  if (c.type !== "sftp") return;
  assertEquals([c.user, c.password, c.host, c.port, c.path], [
    "bob",
    "s@cret",
    "::1",
    2222,
    "/srv/db",
  ]);
  const home = parseReplicaUrl("sftp://u@h:2200");
  if (home.type === "sftp") assertEquals([home.port, home.path], [2200, ""]);
});

Deno.test("sftp URLs: bad ones name the URL and the reason", () => {
  for (
    const [url, reason] of [
      ["sftp://host/path", "no user"],
      ["sftp://u@/path", "no host"],
      ["sftp://u@h:99999/p", "bad port"],
      ["sftp://u@h:x/p", "bad port"],
      ["sftp://u@h/p?x=1", "no query"],
      ["sftp://u%zz@h/p", "percent-encoding"],
    ]
  ) {
    const e = assertThrows(() => parseReplicaUrl(url), ReplicaUrlError);
    assertMatch(e.message, new RegExp(`${url.replace(/[?.*+[\]]/g, "\\$&")}.*${reason}`));
  }
});

Deno.test("sftp config: keys alone, keys over a URL, host-key checked, errors name the key and line", () => {
  const k = replicaOf(`      type: sftp
      host: backup.example.com:2022
      user: strata
      password: pw
      path: backups/app
      key-path: /keys/id_ed25519
      host-key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnf9cR5F3GDcXfR0hpRqgnIMQwZtdYDNH4ohm3wxbhR  me@host
`);
  assertEquals(k, {
    type: "sftp",
    host: "backup.example.com",
    port: 2022,
    user: "strata",
    password: "pw",
    path: "backups/app",
    keyPath: "/keys/id_ed25519",
    hostKey:
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnf9cR5F3GDcXfR0hpRqgnIMQwZtdYDNH4ohm3wxbhR  me@host",
    name: undefined,
    syncIntervalMs: 1000,
  });
  const u = replicaOf(`      url: sftp://alice@nas/backups/app
      user: bob
      key-path: /k
`);
  if (u.type !== "sftp") throw new Error("sftp expected");
  assertEquals([u.user, u.host, u.port, u.path, u.keyPath], [
    "bob",
    "nas",
    22,
    "/backups/app",
    "/k",
  ]);

  const bad: [string, RegExp][] = [
    ["      type: sftp\n      user: u\n      path: /p\n", /t\.yml:4: .*needs "host"/],
    ["      type: sftp\n      host: h\n      path: /p\n", /needs "user"/],
    ["      url: sftp://u@h/p\n      path: /q\n", /"url" or "path", not both/],
    ["      url: sftp://u@h/p\n      host: h2\n", /"url" or "host", not both/],
    ["      url: sftp://u@h/p\n      host-key: AAAA\n", /"host-key": expected a public key/],
    [
      "      url: sftp://u@h/p\n      host-key: ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHnf9cR5F3GDcXfR0hpRqgnIMQwZtdYDNH4ohm3wxbhR\n",
      /"host-key": the key is a ssh-ed25519 key, not ssh-rsa/,
    ],
    [
      "      url: sftp://u@h/p\n      host-key: ssh-ed25519 !!!\n",
      /"host-key": the key after "ssh-ed25519" is not base64/,
    ],
    ["      type: sftp\n      host: h:0\n      user: u\n", /"host" "h:0": bad port/],
    ["      url: sftp://u@h/p\n      type: file\n", /"type" file contradicts url/],
  ];
  for (const [yaml, re] of bad) {
    const e = assertThrows(() => replicaOf(yaml), ConfigError);
    assertMatch(e.message, re);
  }
});

Deno.test("abs URLs and keys: account@container/path, keys over the URL, clear errors", () => {
  assertEquals(parseReplicaUrl("abs://acct@my-container/dbs//app/"), {
    type: "abs",
    accountName: "acct",
    container: "my-container",
    path: "dbs/app",
  });
  assertEquals(parseReplicaUrl("abs://backups"), {
    type: "abs",
    accountName: undefined,
    container: "backups",
    path: "",
  });
  for (
    const [url, reason] of [
      ["abs:///path", "no container"],
      ["abs://Bad_Name/p", "not valid"],
      ["abs://ab/p", "not valid"],
      ["abs://acct@c--x/p", "not valid"],
      ["abs://acct@cont/p?x=1", "no query"],
    ]
  ) {
    const e = assertThrows(() => parseReplicaUrl(url), ReplicaUrlError);
    assertMatch(e.message, new RegExp(`${url.replace(/[?.*+[\]]/g, "\\$&")}.*${reason}`));
  }
  const k = replicaOf(`      type: abs
      account-name: acct
      account-key: a2V5a2V5
      sas-token: ?sv=2024&sig=x
      endpoint: http://127.0.0.1:10000/acct/
      bucket: cont
      path: /a/b
`);
  assertEquals(k, {
    type: "abs",
    accountName: "acct",
    accountKey: "a2V5a2V5",
    sasToken: "sv=2024&sig=x",
    endpoint: "http://127.0.0.1:10000/acct",
    container: "cont",
    path: "a/b",
    name: undefined,
    syncIntervalMs: 1000,
  });
  const u = replicaOf("      url: abs://acct@cont/x\n      account-name: other\n");
  if (u.type !== "abs") throw new Error("abs expected");
  assertEquals([u.accountName, u.container, u.path], ["other", "cont", "x"]);
  const bad: [string, RegExp][] = [
    ["      type: abs\n      account-name: a\n", /t\.yml:4: .*needs "bucket"/],
    ["      url: abs://cont/p\n", /needs "account-name".*or "endpoint"/],
    ["      url: abs://a@cont/p\n      bucket: x\n", /"url" or "bucket", not both/],
    ["      url: abs://a@cont/p\n      path: x\n", /"url" or "path", not both/],
    ["      url: abs://a@cont/p\n      account-key: not base64!\n", /"account-key" is not base64/],
    [
      "      url: abs://a@cont/p\n      endpoint: 127.0.0.1:10000\n",
      /"endpoint" "127.0.0.1:10000" is not a URL/,
    ],
    [
      "      url: abs://a@cont/p\n      endpoint: ftp://h/\n",
      /"endpoint" "ftp:\/\/h\/" must be http/,
    ],
    [
      "      type: abs\n      bucket: UPPER\n      account-name: a\n",
      /"bucket": container name "UPPER"/,
    ],
  ];
  for (const [yaml, re] of bad) {
    const e = assertThrows(() => replicaOf(yaml), ConfigError);
    assertMatch(e.message, re);
  }
});

Deno.test("gs URLs and keys: bucket and path, clear errors", () => {
  assertEquals(parseReplicaUrl("gs://my-bucket/dbs//app/"), {
    type: "gs",
    bucket: "my-bucket",
    path: "dbs/app",
  });
  assertEquals(parseReplicaUrl("gs://b.example.com"), {
    type: "gs",
    bucket: "b.example.com",
    path: "",
  });
  for (
    const [url, reason] of [
      ["gs:///path", "no bucket"],
      ["gs://Upper/p", "not valid"],
      ["gs://ab/p", "not valid"],
      ["gs://u@bucket/p", "no user"],
      ["gs://bucket/p?x=1", "no query"],
    ]
  ) {
    const e = assertThrows(() => parseReplicaUrl(url), ReplicaUrlError);
    assertMatch(e.message, new RegExp(`${url.replace(/[?.*+[\]]/g, "\\$&")}.*${reason}`));
  }
  const k = replicaOf("      type: gs\n      bucket: bkt\n      path: /x/y\n");
  assertEquals(k, {
    type: "gs",
    bucket: "bkt",
    path: "x/y",
    name: undefined,
    syncIntervalMs: 1000,
  });
  const bad: [string, RegExp][] = [
    ["      type: gs\n      path: x\n", /t\.yml:4: .*needs "bucket"/],
    ["      url: gs://bkt/p\n      bucket: x\n", /"url" or "bucket", not both/],
    ["      url: gs://bkt/p\n      path: x\n", /"url" or "path", not both/],
    ["      type: gs\n      bucket: -x-\n", /"bucket": bucket name "-x-" is not valid/],
  ];
  for (const [yaml, re] of bad) {
    const e = assertThrows(() => replicaOf(yaml), ConfigError);
    assertMatch(e.message, re);
  }
});

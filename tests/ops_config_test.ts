/**
 * The operations settings: `addr`, `exec`, `socket`, `logging`, directory
 * entries (`dir` + `pattern`), the exec command-line splitting, the file-name
 * glob, and each directory database's replica and meta paths.
 */

import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import {
  DEFAULT_SOCKET_PATH,
  dirEntryConfig,
  globToRegExp,
  parseConfig,
} from "../src/config/mod.ts";
import { splitCommandLine } from "../src/cli/exec.ts";
import { parseAddr } from "../src/server/mod.ts";
import { parseLogLevel } from "../src/log.ts";

const REPLICA = "    replica:\n      url: file:///backups\n";

Deno.test("config: addr, exec, socket and logging", () => {
  const c = parseConfig(
    `addr: ":9090"
exec: "node server.js --port 8080"
socket:
  enabled: true
  path: /run/strata.sock
  permissions: 0660
logging:
  level: TRACE
  type: json
dbs:
  - path: /a.db
${REPLICA}`,
    "t.yml",
  );
  assertEquals(c.addr, ":9090");
  assertEquals(c.exec, "node server.js --port 8080");
  assertEquals(c.socket, { enabled: true, path: "/run/strata.sock", permissions: 0o660 });
  assertEquals(c.logging, { level: "debug", type: "json" });
  const d = parseConfig(`dbs:\n  - path: /a.db\n${REPLICA}`, "t.yml");
  assertEquals(d.addr, undefined);
  assertEquals(d.exec, undefined);
  assertEquals(d.socket, { enabled: false, path: DEFAULT_SOCKET_PATH, permissions: 0o600 });
  assertEquals(d.dirs, []);
});

Deno.test("config: bad addr, socket and directory settings name the key and line", () => {
  const cases: [string, RegExp][] = [
    [`addr: localhost\ndbs:\n  - path: /a.db\n${REPLICA}`, /t\.yml:1: "addr" must be host:port/],
    [
      `socket:\n  enabled: yes please\ndbs:\n  - path: /a.db\n${REPLICA}`,
      /t\.yml:2: "enabled" must be true or false/,
    ],
    [
      `socket:\n  permissions: rw\ndbs:\n  - path: /a.db\n${REPLICA}`,
      /t\.yml:2: "permissions" must be a file mode/,
    ],
    [
      `socket:\n  enabeld: true\ndbs:\n  - path: /a.db\n${REPLICA}`,
      /t\.yml:2: unknown key "enabeld" in socket: did you mean "enabled"\?/,
    ],
    [`dbs:\n  - dir: /data\n${REPLICA}`, /t\.yml:2: directory \/data needs "pattern"/],
    [
      `dbs:\n  - path: /a.db\n    dir: /data\n    pattern: "*.db"\n${REPLICA}`,
      /t\.yml:3: a dbs entry takes "path" or "dir", not both/,
    ],
    [`dbs:\n  - path: /a.db\n    watch: true\n${REPLICA}`, /t\.yml:3: "watch" goes with "dir"/],
    [
      `dbs:\n  - dir: /data\n    pattern: "[a"\n${REPLICA}`,
      /t\.yml:3: bad pattern "\[a": unclosed \[/,
    ],
    [
      `dbs:\n  - dir: /data\n    pattern: "*.db"\n    recursive: 1\n${REPLICA}`,
      /t\.yml:4: "recursive" must be true or false/,
    ],
    [
      `logging:\n  level: loud\ndbs:\n  - path: /a.db\n${REPLICA}`,
      /t\.yml:2: "level" must be trace, debug, info, warn or error/,
    ],
  ];
  for (const [text, re] of cases) {
    const e = assertThrows(() => parseConfig(text, "t.yml"));
    assert(re.test(e.message), `${JSON.stringify(text)}: ${e.message}`);
  }
});

Deno.test("config: directory entries; each database's replica and meta paths", () => {
  const c = parseConfig(
    `dbs:
  - dir: /data
    pattern: "*.db"
    recursive: true
    watch: true
    meta-path: /var/lib/strata
    replicas:
      - url: file:///backups/app
      - url: s3://bucket/prefix
      - url: sftp://u@host/srv/b
`,
    "t.yml",
  );
  assertEquals(c.dbs, []);
  assertEquals(c.dirs.length, 1);
  const d = c.dirs[0];
  assertEquals([d.dir, d.pattern, d.recursive, d.watch], ["/data", "*.db", true, true]);
  const e = dirEntryConfig(d, "/data/tenants/t1.db");
  assertEquals(e.path, "/data/tenants/t1.db");
  assertEquals(e.metaPath, "/var/lib/strata/tenants/.t1.db-strata");
  assertEquals(e.replicas.map((r) => r.path), [
    "/backups/app/tenants/t1.db",
    "prefix/tenants/t1.db",
    "/srv/b/tenants/t1.db",
  ]);
  assertEquals(dirEntryConfig({ ...d, metaPath: undefined }, "/data/x.db").metaPath, undefined);
  assertThrows(() => dirEntryConfig(d, "/elsewhere/x.db"), Error, "not beneath directory /data");
  // a bucket-root S3 replica
  const root = parseConfig(
    `dbs:\n  - dir: /data\n    pattern: "*"\n    replica:\n      url: s3://bucket\n`,
    "t.yml",
  );
  assertEquals(dirEntryConfig(root.dirs[0], "/data/a.db").replicas[0].path, "a.db");
});

Deno.test("glob patterns on file names, as Go's filepath.Match", () => {
  const m = (p: string, name: string) => globToRegExp(p).test(name);
  assert(m("*.db", "app.db"));
  assert(!m("*.db", "app.db-wal"));
  assert(!m("*.db", "app.sqlite"));
  assert(m("app-?.db", "app-1.db") && !m("app-?.db", "app-12.db"));
  assert(m("[ab]*.db", "b.db") && !m("[ab]*.db", "c.db"));
  assert(m("[!a]*.db", "c.db") && !m("[!a]*.db", "a.db"));
  assert(m("a+b(1).db", "a+b(1).db") && !m("a+b(1).db", "aab1.db"));
  assert(m("\\*.db", "*.db") && !m("\\*.db", "x.db"));
});

Deno.test("exec command lines are split as a shell splits them", () => {
  assertEquals(splitCommandLine("node server.js  --port 8080"), [
    "node",
    "server.js",
    "--port",
    "8080",
  ]);
  assertEquals(splitCommandLine(`sh -c 'echo "hi there"; exit 3'`), [
    "sh",
    "-c",
    `echo "hi there"; exit 3`,
  ]);
  assertEquals(splitCommandLine(`app "a \\"quoted\\" word" b\\ c ''`), [
    "app",
    `a "quoted" word`,
    "b c",
    "",
  ]);
  assertEquals(splitCommandLine("   "), []);
  assertThrows(() => splitCommandLine(`app "open`), Error, "unclosed double quote");
});

Deno.test("metrics addresses and log levels", () => {
  assertEquals(parseAddr(":9090"), { hostname: "0.0.0.0", port: 9090 });
  assertEquals(parseAddr("127.0.0.1:9090"), { hostname: "127.0.0.1", port: 9090 });
  assertEquals(parseAddr("[::1]:9090"), { hostname: "::1", port: 9090 });
  assertThrows(() => parseAddr("9090"), Error, "host:port");
  assertEquals(parseLogLevel("WARN"), "warn");
  assertEquals(parseLogLevel("trace"), "debug");
  assertEquals(parseLogLevel("verbose"), null);
});

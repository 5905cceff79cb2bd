/** Bad input gets a clear error naming the thing and the reason, and nothing is lost. */

import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";
import {
  ConfigError,
  parseConfig,
  parseDuration,
  parseReplicaUrl,
  ReplicaUrlError,
} from "../src/config/mod.ts";
import { parseFlags, UsageError } from "../src/cli/flags.ts";
import { Replicating, runWriter, strata } from "./helpers/strata.ts";

Deno.test("config: Litestream keys parse; durations; env expansion", () => {
  Deno.env.set("STRATA_TEST_DIR", "/backups");
  const cfg = parseConfig(
    `dbs:
  - path: /data/app.db
    monitor-interval: 250ms
    busy-timeout: 2s
    replicas:
      - url: file://\${STRATA_TEST_DIR}/app
        sync-interval: 100ms
  - path: /data/b.db
    replica:
      type: file
      path: $STRATA_TEST_DIR/b
`,
    "t.yml",
  );
  assertEquals(cfg.dbs[0].replicas[0].path, "/backups/app");
  assertEquals(cfg.dbs[0].replicas[0].syncIntervalMs, 100);
  assertEquals(cfg.dbs[0].monitorIntervalMs, 250);
  assertEquals(cfg.dbs[0].busyTimeoutMs, 2000);
  assertEquals(cfg.dbs[1].replicas[0].path, "/backups/b");
  const raw = parseConfig("dbs:\n  - path: /a.db\n    replica:\n      path: /x/$HOME\n", "t.yml", {
    expandEnv: false,
  });
  assertEquals(raw.dbs[0].replicas[0].path, "/x/$HOME");
  assertEquals(parseDuration("1h30m"), 5_400_000);
  assertEquals(parseDuration("soon"), null);
});

Deno.test("config: malformed YAML, unknown keys, bad values and not-yet keys name the key and line", () => {
  const cases: [string, RegExp][] = [
    ["dbs: [\n  - path: x\n", /t\.yml(:\d+)?: malformed YAML/],
    [
      "dbs:\n  - path: /a.db\n    replcia:\n      path: /b\n",
      /t\.yml:3: unknown key "replcia" in a dbs entry: did you mean "replica"\?/,
    ],
    [
      "dbs:\n  - path: /a.db\n    sync-interval: 1s\n    replica:\n      path: /b\n",
      /t\.yml:3: key "sync-interval" does not go in a dbs entry: it goes in a replica entry/,
    ],
    [
      "dbs:\n  - path: /a.db\n    replica:\n      path: /b\n      sync-interval: fast\n",
      /t\.yml:5: "sync-interval": invalid duration "fast"/,
    ],
    [
      "dbs:\n  - path: /a.db\n    replica:\n      path: /b\n      age:\n        recipients: [x]\n",
      /t\.yml:6: "age\.recipients": "x" is not an age recipient/,
    ],
    ["dbs:\n  - path: /a.db\n", /database \/a\.db has no replica/],
    [
      "dbs:\n  - path: /a.db\n    replica:\n      url: nats://host:4222\n",
      /bucket required for a nats replica URL/,
    ],
    [
      "levels:\n  - interval: 5m\n  - interval: 30s\ndbs:\n  - path: /a.db\n    replica:\n      path: /b\n",
      /t\.yml:3: level 2's interval must be longer than level 1's/,
    ],
    [
      "levels:\n  - intervl: 5m\ndbs:\n  - path: /a.db\n    replica:\n      path: /b\n",
      /t\.yml:2: unknown key "intervl" in level 1: did you mean "interval"\?/,
    ],
    [
      "snapshot:\n  interval: 0s\ndbs:\n  - path: /a.db\n    replica:\n      path: /b\n",
      /t\.yml:2: "interval": "0s" is out of range: from 1s to 576h/,
    ],
    [
      "retention:\n  enabled: maybe\ndbs:\n  - path: /a.db\n    replica:\n      path: /b\n",
      /t\.yml:2: "enabled" must be true or false/,
    ],
    ["dbs:\n  - path: /a.db\n    replica:\n      url: ftp://host/x\n", /unknown scheme "ftp"/],
    ["", /empty configuration/],
  ];
  for (const [text, re] of cases) {
    const e = assertThrows(() => parseConfig(text, "t.yml"), ConfigError);
    assertMatch(e.message, re);
  }
});

Deno.test("replica URLs: file URLs and paths; clear errors otherwise", () => {
  assertEquals(parseReplicaUrl("file:///var/backups/db").path, "/var/backups/db");
  assertEquals(parseReplicaUrl("/var/b").path, "/var/b");
  assertThrows(() => parseReplicaUrl("file://host/x"), ReplicaUrlError, "no host");
  assertThrows(() => parseReplicaUrl(""), ReplicaUrlError, "empty");
});

Deno.test("flags: Go style -flag value, -flag=value, --flag, booleans, unknown flags", () => {
  const specs = {
    o: { type: "string" as const, help: "" },
    force: { type: "bool" as const, help: "" },
  };
  const a = parseFlags(["-o", "x.db", "--force", "url"], specs);
  assertEquals([a.strings.get("o"), a.bools.has("force"), a.args], ["x.db", true, ["url"]]);
  const b = parseFlags(["--o=y.db", "-force=false", "u"], specs);
  assertEquals([b.strings.get("o"), b.bools.has("force")], ["y.db", false]);
  assertThrows(
    () => parseFlags(["-nope"], specs),
    UsageError,
    "flag provided but not defined: -nope",
  );
  assertThrows(() => parseFlags(["-o"], specs), UsageError, "flag needs an argument");
});

Deno.test("commands: missing database, not a database, unknown command, bad flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-bad-" });
  try {
    const missing = await strata(["replicate", join(dir, "nope.db"), `file://${dir}/r`]);
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /nope\.db: no such file/);
    const junk = join(dir, "junk.db");
    await Deno.writeTextFile(junk, "this is not a database at all, just some text....");
    const notDb = await strata(["replicate", junk, `file://${dir}/r`]);
    assertEquals(notDb.code, 1);
    assertMatch(notDb.stderr, /junk\.db: not a SQLite database/);
    assertEquals(
      await Deno.readTextFile(junk),
      "this is not a database at all, just some text....",
    );
    const unknown = await strata(["frobnicate"]);
    assertEquals(unknown.code, 1);
    assertMatch(unknown.stderr, /unknown command "frobnicate"/);
    const badFlag = await strata(["restore", "-bogus", "x"]);
    assertEquals(badFlag.code, 2);
    const badTs = await strata([
      "restore",
      "-timestamp",
      "yesterday",
      "-o",
      join(dir, "o.db"),
      `file://${dir}/r`,
    ]);
    assertMatch(badTs.stderr, /invalid -timestamp "yesterday"/);
    const noCfg = await strata(["replicate", "-config", join(dir, "missing.yml")]);
    assertMatch(noCfg.stderr, /missing\.yml: file not found/);
    const empty = await strata(["restore", "-o", join(dir, "o.db"), `file://${dir}/empty`]);
    assertEquals(empty.code, 1);
    assertMatch(empty.stderr, /has no backup files/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore refuses to overwrite, and a corrupt or missing replica file fails cleanly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-bad-" });
  try {
    const db = join(dir, "app.db");
    const replica = join(dir, "replica");
    const marks = join(dir, "m.jsonl");
    await runWriter(db, "more", 7, marks);
    const rep = new Replicating([db, `file://${replica}`]);
    await rep.waitForLog();
    // three batches, each uploaded before the next: at least three L0 files after the full copy
    // (the first snapshot, level 9)
    const l0Count = async () =>
      (await Array.fromAsync(Deno.readDir(join(replica, "ltx", "0"))).catch(() => [])).length;
    for (const seed of [8, 9, 10]) {
      const before = await l0Count();
      await runWriter(db, "more", seed, marks);
      for (const end = Date.now() + 60_000; (await l0Count()) <= before;) {
        assert(Date.now() < end, `batch ${seed} not uploaded after 60 s:\n${rep.log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assertEquals((await rep.stop()).code, 0);

    const existing = join(dir, "existing.db");
    await Deno.writeTextFile(existing, "precious");
    const refused = await strata(["restore", "-o", existing, `file://${replica}`]);
    assertEquals(refused.code, 2);
    assertMatch(refused.stderr, /refusing to overwrite .*existing\.db/);
    assertEquals(await Deno.readTextFile(existing), "precious");
    const skipped = await strata([
      "restore",
      "-if-db-not-exists",
      "-o",
      existing,
      `file://${replica}`,
    ]);
    assertEquals(skipped.code, 0);
    assertEquals(await Deno.readTextFile(existing), "precious");

    // flip one byte in the newest L0 file (and in any compacted file reaching as far, since
    // a compaction may have run): restore names the file and leaves nothing behind
    const l0 = join(replica, "ltx", "0");
    const names = [...Deno.readDirSync(l0)].map((e) => e.name).sort();
    assert(names.length >= 3, `only ${names.length} L0 files`);
    const newest = names[names.length - 1];
    const maxTXID = newest.slice(17, 33);
    for (const level of ["0", "1", "2", "3"]) {
      for (const e of listDir(join(replica, "ltx", level))) {
        if (e.slice(17, 33) !== maxTXID) continue;
        const victim = join(replica, "ltx", level, e);
        const bytes = await Deno.readFile(victim);
        bytes[bytes.length - 20] ^= 0x40;
        await Deno.writeFile(victim, bytes);
      }
    }
    const out = join(dir, "out.db");
    const bad = await strata(["restore", "-o", out, `file://${replica}`]);
    assertEquals(bad.code, 1);
    assertMatch(bad.stderr, new RegExp(maxTXID + "\\.ltx"));
    assert(!(await Deno.stat(out).then(() => true, () => false)), `${out} left behind`);
    for (const e of Deno.readDirSync(dir)) {
      assert(!e.name.endsWith(".tmp"), `${e.name} left behind`);
    }
    // a missing file in the middle: the chain has a gap, named in the error
    for (const level of ["1", "2", "3"]) {
      await Deno.remove(join(replica, "ltx", level), { recursive: true }).catch(() => {});
    }
    await Deno.remove(join(l0, names[Math.floor(names.length / 2)]));
    const gap = await strata(["restore", "-o", out, `file://${replica}`]);
    assertEquals(gap.code, 1);
    assertMatch(gap.stderr, /cannot reach TXID .*no file holds TXID/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function listDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

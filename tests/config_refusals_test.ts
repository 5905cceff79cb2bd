/**
 * Out-of-range settings and ambiguous input are refused by name, never read
 * as something else: durations that overflow a timer or spin a core, huge
 * numbers, unset environment variables, times without a zone or on days that
 * do not exist, TXIDs that read as hex or decimal alike.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";
import { Replicating, runWriter, strata } from "./helpers/strata.ts";
import { waitFor } from "./helpers/ops.ts";
import { PROJECT_ROOT } from "./helpers/vectors.ts";
import {
  ConfigError,
  DURATION_LIMITS,
  expandEnv,
  formatDuration,
  parseConfig,
  parseDurationIn,
  UnsetVariableError,
} from "../src/config/mod.ts";
import { readRFC3339 } from "../src/rfc3339.ts";
import { parseTXIDFlag } from "../src/cli/target_flags.ts";
import { UsageError } from "../src/cli/flags.ts";

const MAIN = join(PROJECT_ROOT, "main.ts");

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `strata replicate -config` on `yaml` and returns its output once it
 * exits; a replicate that starts (its replica appears) or is still running
 * after 60 s accepted the config and is stopped: `accepted` is then true.
 */
async function replicateWith(
  dir: string,
  yaml: string,
  replica: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string; accepted: boolean }> {
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(cfg, yaml);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "replicate", "-config", cfg],
    env: { NO_COLOR: "1", ...env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const out = child.output().finally(() => exited = true);
  const deadline = Date.now() + 60_000;
  let accepted = false;
  while (!exited) {
    if (await exists(join(replica, "ltx")) || Date.now() > deadline) {
      accepted = true;
      child.kill("SIGINT");
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const r = await out;
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr), accepted };
}

/** `strata replicate` on `c.yaml` exits 1 with `c.message` at `c.line`, creating no replica. */
async function assertRefused(
  dir: string,
  c: { what: string; yaml: string; line: number; message: RegExp; replica: string },
): Promise<void> {
  const r = await replicateWith(dir, c.yaml, c.replica);
  assert(!r.accepted, `${c.what}: replicate accepted\n${c.yaml}\n${r.stderr}`);
  assertEquals(r.code, 1, `${c.what}: ${r.stderr}`);
  assertMatch(r.stderr, new RegExp(`strata\\.yml:${c.line}: `), c.what);
  assertMatch(r.stderr, c.message, c.what);
  assert(!await exists(c.replica), `${c.what}: ${c.replica} was created`);
}

Deno.test("replicate refuses out-of-range durations and numbers, naming the key and line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-limits-" });
  try {
    const db = join(dir, "app.db");
    await runWriter(db, "more", 1, join(dir, "m.jsonl"));
    const rep = join(dir, "rep");
    const entry = (dbLines: string, replicaLines = "") =>
      `dbs:\n  - path: ${db}\n${dbLines}    replicas:\n      - url: file://${rep}\n${replicaLines}`;
    const cases: [what: string, yaml: string, bad: string, message: RegExp][] = [
      [
        "overflow of a timer",
        entry("", "        sync-interval: 999999999h\n"),
        "999999999h",
        /"sync-interval": "999999999h" is out of range: from 10ms to 576h/,
      ],
      [
        "400 digits",
        entry(`    monitor-interval: ${"9".repeat(400)}ms\n`),
        "9999",
        /"monitor-interval": invalid duration "9{400}ms": too large/,
      ],
      [
        "a busy loop of levels",
        `levels:\n  - interval: 1ms\n${entry("")}`,
        "1ms",
        /"interval": "1ms" is out of range: from 1s to 576h/,
      ],
      [
        "a snapshot every millisecond",
        `snapshot:\n  interval: 1ms\n${entry("")}`,
        "1ms",
        /"interval": "1ms" is out of range: from 1s/,
      ],
      [
        "a retention check every nanosecond",
        `l0-retention-check-interval: 1ns\n${entry("")}`,
        "1ns",
        /"l0-retention-check-interval": "1ns" is out of range/,
      ],
      [
        "negative",
        entry("    busy-timeout: -1s\n"),
        "-1s",
        /"busy-timeout": invalid duration "-1s": must not be negative/,
      ],
      [
        "a huge integer",
        entry("    max-pending-files: 99999999999999999999\n"),
        "9999",
        /"max-pending-files": "99999999999999999999" is out of range: from 2 to 100000/,
      ],
      [
        "a page count of 0 (a checkpoint every tick)",
        entry("    min-checkpoint-page-count: 0\n"),
        "min-checkpoint",
        /"min-checkpoint-page-count": "0" is out of range: from 1/,
      ],
      [
        "a decimal file mode",
        `socket:\n  enabled: false\n  permissions: 600\n${entry("")}`,
        "600",
        /"permissions" must be a file mode in octal with a leading 0/,
      ],
    ];
    for (const [what, yaml, bad, message] of cases) {
      const line = yaml.split("\n").findIndex((l) => l.includes(bad)) + 1;
      await assertRefused(dir, { what, yaml, line, message, replica: rep });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replicate refuses an unset environment variable in a replica URL instead of dropping it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-limits-" });
  try {
    const db = join(dir, "app.db");
    await runWriter(db, "more", 1, join(dir, "m.jsonl"));
    // `file://${UNSET}/rep` used to back up to /rep: here, to <dir>/rep
    const yaml =
      `dbs:\n  - path: ${db}\n    replicas:\n      # \${ALSO_UNSET} in a comment is left alone\n      - url: file://\${STRATA_H5_UNSET}${dir}/rep\n`;
    const r = await replicateWith(dir, yaml, join(dir, "rep"));
    assert(!r.accepted, `replicate accepted: ${r.stderr}`);
    assertEquals(r.code, 1);
    assertMatch(
      r.stderr,
      /strata\.yml:5: "url": environment variable STRATA_H5_UNSET is not set/,
    );
    assert(!await exists(join(dir, "rep")));

    // with a default, or set, it is used
    const withDefault = yaml.replace("${STRATA_H5_UNSET}", "${STRATA_H5_UNSET:-}");
    const ok = await replicateWith(dir, withDefault, join(dir, "rep"));
    assert(ok.accepted, ok.stderr);
    await Deno.remove(join(dir, "rep"), { recursive: true });
    const set = await replicateWith(dir, yaml, join(dir, "rep"), { STRATA_H5_UNSET: "" });
    assert(set.accepted, set.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore and clone refuse times without a zone, impossible dates, ambiguous TXIDs and huge intervals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-limits-" });
  try {
    const db = join(dir, "app.db");
    const marks = join(dir, "m.jsonl");
    const rep = join(dir, "rep");
    await runWriter(db, "more", 1, marks);
    const replicating = new Replicating([db, `file://${rep}`]);
    await waitFor("a first snapshot", () => {
      try {
        return [...Deno.readDirSync(join(rep, "ltx", "9"))].length >= 1;
      } catch {
        return false;
      }
    }, 60);
    assertEquals((await replicating.stop()).code, 0);
    const listing = await strata(["ltx", "-level", "all", "-json", `file://${rep}`]);
    assertEquals(listing.code, 0, listing.stderr);
    const maxTXIDs: string[] = JSON.parse(listing.stdout).map((f: { maxTXID: string }) =>
      f.maxTXID
    );
    // a TXID whose hex form is all digits, printed as strata prints it
    const txid = maxTXIDs.find((t) => /^\d{16}$/.test(t));
    assert(txid, `no all-digit TXID among ${maxTXIDs}`);
    const url = `file://${rep}`;
    const out = (n: string) => join(dir, `${n}.db`);

    const refused: [string[], RegExp][] = [
      [
        ["-timestamp", "2026-02-30T10:00:00Z"],
        /invalid -timestamp "2026-02-30T10:00:00Z": 2026-02 has no day 30/,
      ],
      [
        ["-timestamp", new Date().toISOString().slice(0, 19)],
        /invalid -timestamp ".*": no time zone: add Z \(UTC\) or an offset/,
      ],
      [["-timestamp", "2026-11-22"], /a date needs a time and a zone/],
      [["-txid", txid.slice(1)], /ambiguous -txid "\d{15}": digits only, 15 long/],
      [["-txid", "0000000000000000"], /TXIDs start at 1/],
      [["-txid", "0x" + "f".repeat(17)], /invalid -txid/],
      [["-f", "-follow-interval", "999999999h"], /-follow-interval: "999999999h" is out of range/],
      [["-f", "-follow-interval", "1ms"], /-follow-interval: "1ms" is out of range: from 10ms/],
    ];
    for (const [i, [flags, message]] of refused.entries()) {
      const r = await strata(["restore", ...flags, "-o", out(`r${i}`), url], {
        env: {},
      });
      assertEquals(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, message, flags.join(" "));
      assert(!await exists(out(`r${i}`)), `${flags.join(" ")} restored something`);
    }

    // the forms that are not ambiguous restore that TXID
    for (const form of [txid, "0x" + txid.replace(/^0+/, "")]) {
      const o = out(`ok-${form}`);
      const r = await strata(["restore", "-no-progress", "-txid", form, "-o", o, url]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, new RegExp(`to TXID ${txid}`));
    }
    const withZone = await strata([
      "restore",
      "-no-progress",
      "-timestamp",
      new Date(Date.now() + 3_600_000).toISOString().replace("Z", "+01:00"),
      "-o",
      out("zoned"),
      url,
    ]);
    assertEquals(withZone.code, 0, withZone.stderr);

    // clone reads times and TXIDs with the same parser
    for (
      const [flags, message] of [
        [["-timestamp", "2026-11-22T10:00:00"], /no time zone/],
        [["-timestamp", "2025-02-29T10:00:00Z"], /2025-02 has no day 29/],
        [["-txid", txid.slice(1)], /ambiguous -txid/],
      ] as [string[], RegExp][]
    ) {
      const r = await strata(["clone", ...flags, url, `file://${dir}/branch`]);
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, message);
      assert(!await exists(join(dir, "branch")));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("durations: every class of bad value, by range", () => {
  const sync = DURATION_LIMITS["sync-interval"];
  assertEquals(parseDurationIn("1h30m", sync), 5_400_000);
  assertEquals(parseDurationIn("1.5s", sync), 1500);
  assertThrows(() => parseDurationIn("999999999h", sync), Error, "out of range");
  assertThrows(() => parseDurationIn("9".repeat(400) + "s", sync), Error, "too large");
  assertThrows(() => parseDurationIn("1e400s", sync), Error, "invalid duration");
  assertThrows(() => parseDurationIn("NaN", sync), Error, "invalid duration");
  assertThrows(() => parseDurationIn("Infinity", sync), Error, "invalid duration");
  assertThrows(() => parseDurationIn("-5s", sync), Error, "must not be negative");
  assertThrows(() => parseDurationIn("1ms", sync), Error, "from 10ms to 576h");
  assertThrows(() => parseDurationIn("0", sync), Error, "out of range");
  assertThrows(() => parseDurationIn("", sync), Error, "invalid duration");
  // 0 means something for some keys
  assertEquals(parseDurationIn("0s", DURATION_LIMITS["validation-interval"]), 0);
  assertEquals(parseDurationIn("0", DURATION_LIMITS["l0-retention"]), 0);
  // every maximum fits in a timer
  for (const [key, r] of Object.entries(DURATION_LIMITS)) {
    assert(r.min > 0 && r.min <= r.max, key);
    if (!key.includes("retention") || key.includes("check")) assert(r.max <= 2 ** 31 - 1, key);
  }
  assertEquals(formatDuration(5_400_000), "1h30m");
  assertEquals(formatDuration(100), "100ms");
});

Deno.test("config: every numeric key is range-checked with its key and line", () => {
  const base = "dbs:\n  - path: /a.db\n";
  const rep = "    replica:\n      path: /b\n";
  const cases: [string, RegExp][] = [
    [base + "    truncate-page-n: -5\n" + rep, /t\.yml:3: "truncate-page-n": "-5" is out of range/],
    [base + "    truncate-page-n: 1.5\n" + rep, /t\.yml:3: "truncate-page-n" must be an integer/],
    [base + "    truncate-page-n: true\n" + rep, /t\.yml:3: "truncate-page-n" must be an integer/],
    [
      base + "    max-pending-files: 1\n" + rep,
      /t\.yml:3: "max-pending-files": "1" is out of range/,
    ],
    [base + "    checkpoint-interval: 1ms\n" + rep, /t\.yml:3: "checkpoint-interval": "1ms"/],
    [
      base + "    monitor-interval: 2h\n" + rep,
      /t\.yml:3: "monitor-interval": "2h" is out of range/,
    ],
    [base + rep + "      validation-interval: 1ms\n", /t\.yml:5: "validation-interval": "1ms"/],
    [
      "snapshot:\n  retention: 100000h\n" + base + rep,
      /t\.yml:2: "retention": "100000h" is out of range: from 1s to 87600h/,
    ],
    ["l0-retention: -1s\n" + base + rep, /t\.yml:1: "l0-retention": invalid duration "-1s"/],
    ["addr: :99999999999999999999\n" + base + rep, /t\.yml:1: "addr" must be host:port/],
    ["addr: :0\n" + base + rep, /t\.yml:1: "addr" must be host:port/],
    ["socket:\n  permissions: 01777\n" + base + rep, /t\.yml:2: "permissions" must be a file mode/],
    [
      "socket:\n  permissions: 0o1777\n" + base + rep,
      /t\.yml:2: "permissions" must be a file mode/,
    ],
    [
      base + "    replica:\n      url: s3://b/p?partSize=" + "9".repeat(400) + "\n",
      /partSize must be between/,
    ],
    [
      base + "    replica:\n      url: sftp://u@h:99999999999999999999/p\n",
      /port|host/,
    ],
  ];
  for (const [text, re] of cases) {
    const e = assertThrows(() => parseConfig(text, "t.yml"), ConfigError);
    assertMatch(e.message, re);
  }
  const ok = parseConfig(
    "socket:\n  permissions: 0640\n" + base + "    max-pending-files: 0\n" + rep,
    "t.yml",
  );
  assertEquals(ok.socket.permissions, 0o640);
  assertEquals(ok.dbs[0].maxPendingFiles, undefined);
});

Deno.test("environment variables: unset is an error naming it and the key; defaults; $$", () => {
  const env = (k: string) => ({ SET: "v", EMPTY: "" } as Record<string, string>)[k];
  assertEquals(expandEnv("a/$SET/${SET}/b", env), "a/v/v/b");
  assertEquals(expandEnv("${UNSET:-/d}|${EMPTY:-e}|${SET:-x}|$EMPTY", env), "/d|e|v|");
  assertEquals(expandEnv("pa$$word", env), "pa$word");
  const e = assertThrows(() => expandEnv("file://${UNSET}/rep", env), UnsetVariableError);
  assertEquals(e.variable, "UNSET");
  Deno.env.delete("STRATA_H5_UNSET");
  Deno.env.set("STRATA_H5_FLAG", "false");
  try {
    const err = assertThrows(
      () =>
        parseConfig(
          "dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      bucket: b\n      access-key-id: $STRATA_H5_UNSET\n",
          "t.yml",
        ),
      ConfigError,
    );
    assertMatch(err.message, /t\.yml:6: "access-key-id": environment variable STRATA_H5_UNSET/);
    // a plain value is typed after expansion; a comment's variables are never read
    const cfg = parseConfig(
      "# $STRATA_H5_UNSET\nretention:\n  enabled: $STRATA_H5_FLAG\ndbs:\n  - path: ${STRATA_H5_UNSET:-/d}/a.db\n    replica:\n      path: /b\n",
      "t.yml",
    );
    assertEquals(cfg.compaction.retentionEnabled, false);
    assertEquals(cfg.dbs[0].path, "/d/a.db");
  } finally {
    Deno.env.delete("STRATA_H5_FLAG");
  }
});

Deno.test("times: RFC 3339 with a zone and a real calendar date, nothing else", () => {
  const ok: [string, string][] = [
    ["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000Z"],
    ["2026-11-22t10:00:00z", "2026-11-22T10:00:00.000Z"],
    ["2026-11-22T11:30:00+01:30", "2026-11-22T10:00:00.000Z"],
    ["2026-11-22T05:00:00-05:00", "2026-11-22T10:00:00.000Z"],
    ["2026-11-22T10:00:00.123456789Z", "2026-11-22T10:00:00.123Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
  ];
  for (const [s, iso] of ok) assertEquals((readRFC3339(s) as Date).toISOString(), iso, s);
  const bad: [string, RegExp][] = [
    ["2026-11-22T10:00:00", /no time zone/],
    ["2026-02-30T10:00:00Z", /has no day 30/],
    ["2025-02-29T10:00:00Z", /has no day 29/],
    ["2026-04-31T10:00:00Z", /has no day 31/],
    ["2026-13-01T10:00:00Z", /no month 13/],
    ["2026-00-10T10:00:00Z", /no month 00/],
    ["2026-11-22T24:00:00Z", /no time 24:00:00/],
    ["2026-11-22T10:60:00Z", /no time/],
    ["2026-11-22T10:00:60Z", /no time/],
    ["2026-11-22T10:00:00+24:00", /no zone offset/],
    ["2026-11-22", /a date needs a time/],
    ["1764000000", /not an RFC 3339 time/],
    ["2026-11-22T10:00Z", /not an RFC 3339 time/],
  ];
  for (const [s, re] of bad) {
    const r = readRFC3339(s);
    assert(typeof r === "string", `${s} was accepted`);
    assertMatch(r, re, s);
  }
});

Deno.test("TXIDs: 16 hex digits, 0x hex, short decimal; ambiguous digit strings refused", () => {
  assertEquals(parseTXIDFlag("00000000000004d2"), 0x4d2n);
  assertEquals(parseTXIDFlag("0000000000001234"), 0x1234n);
  assertEquals(parseTXIDFlag("0x1234"), 0x1234n);
  assertEquals(parseTXIDFlag("0XFFFFFFFFFFFFFFFF"), 0xffffffffffffffffn);
  assertEquals(parseTXIDFlag("1234"), 1234n);
  assertEquals(parseTXIDFlag("99999999"), 99_999_999n);
  for (const s of ["000000000001234", "123456789", "0001234", "01"]) {
    assertThrows(() => parseTXIDFlag(s), UsageError, "ambiguous -txid");
  }
  for (const s of ["4d2", "0x", "0x" + "1".repeat(17), "-5", "1.5", "", "12345678901234567"]) {
    assertThrows(() => parseTXIDFlag(s), UsageError, "-txid");
  }
  assertThrows(() => parseTXIDFlag("0"), UsageError);
  assertThrows(() => parseTXIDFlag("0x0"), UsageError, "TXIDs start at 1");
});

Deno.test("replicate refuses two databases in one replica, nested replicas and a database listed twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-overlap-" });
  try {
    const a = join(dir, "a.db");
    const b = join(dir, "b.db");
    await runWriter(a, "more", 1, join(dir, "m.jsonl"));
    await runWriter(b, "more", 2, join(dir, "m.jsonl"));
    const rep = join(dir, "rep");
    const db = (path: string, ...urls: string[]) =>
      `  - path: ${path}\n    replicas:\n${urls.map((u) => `      - url: ${u}\n`).join("")}`;
    const cases: [what: string, yaml: string, line: number, message: RegExp][] = [
      [
        "two databases, one replica",
        `dbs:\n${db(a, `file://${rep}`)}${db(b, `file://${rep}/`)}`,
        7,
        new RegExp(
          `replica file://${rep} of database ${b} is also the replica of database ${a} \\(line 4\\)`,
        ),
      ],
      [
        "a replica inside another database's replica",
        `dbs:\n${db(a, `file://${rep}`)}${db(b, `file://${rep}/b`)}`,
        7,
        new RegExp(`replica file://${rep}/b of database ${b} is inside file://${rep},`),
      ],
      [
        "one database listed twice (another spelling)",
        `dbs:\n${db(a, `file://${rep}/a`)}${db(`${dir}/./x/../a.db`, `file://${rep}/a2`)}`,
        5,
        new RegExp(
          `database ${a} \\(written .*/x/\\.\\./a\\.db\\) is already replicated by database ${a} \\(line 2\\)`,
        ),
      ],
      [
        "a database a directory entry already replicates",
        `dbs:\n  - dir: ${dir}\n    pattern: "*.db"\n    replica:\n      url: file://${rep}/all\n${
          db(a, `file://${rep}/a`)
        }`,
        6,
        /is already replicated by directory .* \(\*\.db\) \(line 2\)/,
      ],
      [
        "one database, the same S3 replica twice",
        `dbs:\n${
          db(
            a,
            "s3://bucket/app?endpoint=http://127.0.0.1:1",
            "s3://bucket/app/?endpoint=http://127.0.0.1:1",
          )
        }`,
        5,
        /is also another replica of the same database/,
      ],
    ];
    for (const [what, yaml, line, message] of cases) {
      await assertRefused(dir, { what, yaml, line, message, replica: rep });
    }
    // siblings are fine
    const ok = await replicateWith(
      dir,
      `dbs:\n${db(a, `file://${rep}/a`)}${db(b, `file://${rep}/b`)}`,
      join(rep, "b"),
    );
    assert(ok.accepted, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

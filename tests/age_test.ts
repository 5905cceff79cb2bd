/**
 * Client-side encryption of replicas with age (issue 19): round trips on a
 * file replica and on S3 (fauxqs) with the app writing from its own process;
 * no replica file holds a plaintext page; a wrong or missing identity fails
 * naming the file, with nothing written; key rotation; a plaintext replica is
 * never read as an encrypted one.
 */

import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { ConfigError, parseConfig } from "../src/config/config.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "./helpers/assert.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./helpers/strata.ts";
import { addNote, python, waitFor } from "./helpers/ops.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { ensureLitestream } from "./helpers/litestream.ts";
import { freePorts } from "./helpers/test_tools.ts";

async function keyPair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateIdentity();
  return { identity, recipient: await identityToRecipient(identity) };
}

function config(db: string, url: string, age: { recipients: string[]; identities: string[] }) {
  const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(", ")}]`;
  return `dbs:\n  - path: ${db}\n    replicas:\n      - url: ${url}\n        sync-interval: 100ms\n` +
    `        age:\n          recipients: ${list(age.recipients)}\n          identities: ${
      list(age.identities)
    }\n`;
}

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await filesUnder(p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

const contains = (hay: Uint8Array, needle: Uint8Array) => {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
};

Deno.test("age config: recipients and identities (keys or identity files) checked by form; no secret in messages", async () => {
  const { identity, recipient } = await keyPair();
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "keys.txt");
    await Deno.writeTextFile(file, `# created by a test\n${identity}\n`);
    const cfg = parseConfig(
      config("/a.db", "file:///b", { recipients: [recipient], identities: [file] }),
      "t.yml",
    );
    assertEquals(cfg.dbs[0].replicas[0].age, { recipients: [recipient], identities: [identity] });
    const bad = identity.slice(0, -3) + "!!!";
    const e = assertThrows(
      () =>
        parseConfig(config("/a.db", "file:///b", { recipients: [], identities: [bad] }), "t.yml"),
      ConfigError,
    );
    assertMatch(e.message, /not a valid age identity/);
    assert(!e.message.includes(bad.slice(20)), "the key is not echoed");
    const f = assertThrows(
      () =>
        parseConfig(
          config("/a.db", "file:///b", { recipients: [recipient], identities: [] }) +
            "        format: litestream\n",
          "t.yml",
        ),
      ConfigError,
    );
    assertMatch(f.message, /exclude each other/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("age on a file replica: exact latest and point-in-time restores, no plaintext page in the replica, wrong identity refused by name, rotation", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-age-" });
  try {
    const a = await keyPair();
    const b = await keyPair();
    const db = join(dir, "app.db");
    const rep = join(dir, "replica");
    const url = `file://${rep}`;
    const marks = join(dir, "marks.jsonl");
    const marker = `PLAINTEXT-MARKER-${crypto.randomUUID()}`;
    await runWriter(db, "more", 1, marks);
    await addNote(db, marker);
    const cfgA = join(dir, "a.yml");
    await Deno.writeTextFile(
      cfgA,
      config(db, url, { recipients: [a.recipient], identities: [a.identity] }),
    );
    let s = new Replicating(["-config", cfgA]);
    let before = 0;
    try {
      await s.waitForLog();
      before = (await readMarks(marks)).length;
      await runWriter(db, "main", 2, marks);
    } finally {
      const out = await s.stop();
      assertEquals(out.code, 0, out.stderr);
      assert(!out.stderr.includes(a.identity), "the identity is never logged");
    }
    // the newest TXID written with A's key (the end of a file: a TXID a restore can ask for)
    const endA = (await new FileReplicaClient(rep).listFiles(0)).reduce(
      (m, f) => f.maxTXID > m ? f.maxTXID : m,
      0n,
    );
    assert(endA > 1n, "files after the snapshot were written with A's key");
    // every replica file is age-encrypted and holds no plaintext; the local L0 files hold it
    const needle = new TextEncoder().encode(marker);
    const files = await filesUnder(rep);
    const ltx = files.filter((f) => f.endsWith(".ltx"));
    assert(ltx.length >= 2, `replica files: ${files}`);
    for (const f of ltx) {
      const bytes = await Deno.readFile(f);
      assertEquals(new TextDecoder().decode(bytes.subarray(0, 21)), "age-encryption.org/v1", f);
      assert(!contains(bytes, needle), `${f} holds the plaintext marker`);
    }
    // the control: the same search finds the marker in an unencrypted replica of a copy of the
    // database (the local meta files may already be pruned, so they cannot serve)
    const copy = join(dir, "control.db");
    await python(
      "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))",
      db,
      copy,
    );
    const plainRep = join(dir, "control-replica");
    const once = await strata(["replicate", "-once", copy, `file://${plainRep}`]);
    assertEquals(once.code, 0, once.stderr);
    let seen = false;
    for (const f of (await filesUnder(plainRep)).filter((f) => f.endsWith(".ltx"))) {
      if (contains(await Deno.readFile(f), needle)) seen = true;
    }
    assert(seen, "the control: the marker is in an unencrypted replica's LTX files");

    // restores through the config: latest and a point in time, exact
    const restoreTo = async (cfg: string, out: string, args: string[] = []) =>
      await strata(["restore", "-config", cfg, "-no-progress", "-o", out, ...args, db]);
    let r = await restoreTo(cfgA, join(dir, "latest.db"));
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "latest.db"))).digest, (await digestOf(db)).digest);
    const during = (await readMarks(marks)).slice(before);
    assert(during.length > 0, "the app marked quiet moments while strata ran");
    const m = during[Math.floor(during.length / 2)];
    r = await restoreTo(cfgA, join(dir, "pit.db"), ["-timestamp", new Date(m.time).toISOString()]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "pit.db"))).digest, m.digest, "point in time");

    // verify reads the encrypted replica through the config too
    r = await strata(["verify", "-config", cfgA, "-no-progress", db]);
    assertEquals(r.code, 0, r.stdout + r.stderr);

    // a branch of the encrypted replica (clone -config: the source's keys), restored through a
    // config that lists the branch with the same keys: the state at that point, exactly
    const branch = join(dir, "branch");
    r = await strata([
      "clone",
      "-config",
      cfgA,
      "-timestamp",
      new Date(m.time).toISOString(),
      url,
      `file://${branch}`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const cfgBranch = join(dir, "branch.yml");
    await Deno.writeTextFile(
      cfgBranch,
      config(join(dir, "branch.db"), `file://${branch}`, {
        recipients: [a.recipient],
        identities: [a.identity],
      }),
    );
    r = await strata([
      "restore",
      "-config",
      cfgBranch,
      "-no-progress",
      "-o",
      join(dir, "b.db"),
      join(dir, "branch.db"),
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "b.db"))).digest, m.digest, "the branch's base state");

    // a wrong identity: refused naming a file, nothing written
    const wrong = join(dir, "wrong.yml");
    await Deno.writeTextFile(wrong, config(db, url, { recipients: [], identities: [b.identity] }));
    r = await restoreTo(wrong, join(dir, "wrong.db"));
    assert(r.code !== 0, "refused");
    assertMatch(r.stderr, /\.ltx.*no configured age identity matches this file's recipients/s);
    assert(
      !(await Deno.stat(join(dir, "wrong.db")).then(() => true, () => false)),
      "nothing written",
    );
    // without any age settings: named as encrypted
    r = await strata(["restore", "-no-progress", "-o", join(dir, "plain.db"), url]);
    assert(r.code !== 0);
    assertMatch(
      r.stderr,
      /is age-encrypted: read it through a config whose replica has age identities/,
    );

    // rotation: new files to B, older ones still opened with A
    const cfgB = join(dir, "b.yml");
    await Deno.writeTextFile(
      cfgB,
      config(db, url, { recipients: [b.recipient], identities: [b.identity, a.identity] }),
    );
    s = new Replicating(["-config", cfgB]);
    try {
      await s.waitForLog();
      await runWriter(db, "more", 3, marks);
      const want = (await digestOf(db)).digest;
      await waitFor("the replica to hold the writes made after rotation", async () => {
        const o = join(dir, `probe-${crypto.randomUUID().slice(0, 6)}.db`);
        const x = await restoreTo(cfgB, o);
        return x.code === 0 && (await digestOf(o)).digest === want;
      }, 60);
    } finally {
      const out = await s.stop();
      assertEquals(out.code, 0, out.stderr);
    }
    // with B's identity alone, files written to A cannot be opened: named
    const onlyB = join(dir, "onlyb.yml");
    await Deno.writeTextFile(onlyB, config(db, url, { recipients: [], identities: [b.identity] }));
    r = await restoreTo(onlyB, join(dir, "onlyb.db"), ["-txid", `0x${endA.toString(16)}`]);
    assert(r.code !== 0, "an old file written to A needs A's identity");
    assertMatch(r.stderr, /no configured age identity matches/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("age on S3 (fauxqs): replicate -once and restore exactly; a plaintext replica is never read as encrypted", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-age-s3-" });
  try {
    const k = await keyPair();
    const bucket = await s3.createBucket();
    const url = `s3://${bucket}/app?endpoint=${s3.endpoint}`;
    const db = join(dir, "app.db");
    await runWriter(db, "more", 5, join(dir, "marks.jsonl"));
    const cfg = join(dir, "s.yml");
    await Deno.writeTextFile(
      cfg,
      config(db, url, { recipients: [k.recipient], identities: [k.identity] }),
    );
    let r = await strata(["replicate", "-once", "-config", cfg], { env: TEST_CREDENTIALS });
    assertEquals(r.code, 0, r.stderr);
    r = await strata(["restore", "-config", cfg, "-no-progress", "-o", join(dir, "out.db"), db], {
      env: TEST_CREDENTIALS,
    });
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "out.db"))).digest, (await digestOf(db)).digest);

    // a replica written without encryption, read with age settings: refused by name
    const plainUrl = `s3://${bucket}/plain?endpoint=${s3.endpoint}`;
    r = await strata(["replicate", "-once", db, plainUrl], { env: TEST_CREDENTIALS });
    assertEquals(r.code, 0, r.stderr);
    const cfg2 = join(dir, "p.yml");
    await Deno.writeTextFile(
      cfg2,
      config(db, plainUrl, { recipients: [k.recipient], identities: [k.identity] }),
    );
    r = await strata(["restore", "-config", cfg2, "-no-progress", "-o", join(dir, "p.db"), db], {
      env: TEST_CREDENTIALS,
    });
    assert(r.code !== 0, "refused");
    assertMatch(r.stderr, /is not age-encrypted/);
  } finally {
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a replica Litestream v0.3.13 wrote with age (the real binary) restores exactly through the same identities", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-age-v03-" });
  const k = await keyPair();
  const db = join(dir, "app.db");
  const rep = join(dir, "replica");
  const marks = join(dir, "marks.jsonl");
  await runWriter(db, "more", 7, marks);
  const lsCfg = join(dir, "litestream.yml");
  await Deno.writeTextFile(
    lsCfg,
    `dbs:\n  - path: ${db}\n    replicas:\n      - path: ${rep}\n        sync-interval: 100ms\n` +
      `        age:\n          identities: [${k.identity}]\n          recipients: [${k.recipient}]\n`,
  );
  const bin = await ensureLitestream();
  const child = new Deno.Command(bin, {
    args: ["replicate", "-config", lsCfg],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    config(db, `file://${rep}`, { recipients: [], identities: [k.identity] }),
  );
  try {
    await runWriter(db, "main", 8, marks);
    const want = (await readMarks(marks)).at(-1)!.digest;
    let last = "";
    await waitFor("Litestream to ship the app's last state", async () => {
      const o = join(dir, `probe-${crypto.randomUUID().slice(0, 6)}.db`);
      const r = await strata([
        "restore",
        "-config",
        cfg,
        "-integrity-check",
        "none",
        "-no-progress",
        "-o",
        o,
        db,
      ]);
      last = r.stderr;
      return r.code === 0 && (await digestOf(o)).digest === want;
    }, 120).catch((e) => {
      throw new Error(`${(e as Error).message}\nlast restore: ${last}`);
    });
  } finally {
    child.kill("SIGINT");
    await child.output();
  }
  try {
    // its files are age-encrypted: without the identity they cannot be read
    const snaps = (await filesUnder(rep)).filter((f) => f.endsWith(".snapshot.lz4"));
    assert(snaps.length > 0, "a v0.3 snapshot");
    const head = new TextDecoder().decode((await Deno.readFile(snaps[0])).subarray(0, 21));
    assertEquals(head, "age-encryption.org/v1");
    const out = join(dir, "restored.db");
    const r = await strata(["restore", "-config", cfg, "-no-progress", "-o", out, db]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(out)).digest, (await readMarks(marks)).at(-1)!.digest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("switching on age over a plaintext replica: a new encrypted lineage, compaction never merges plaintext, both histories restore exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-age-switch-" });
  try {
    const k = await keyPair();
    const db = join(dir, "app.db");
    const rep = join(dir, "replica");
    const url = `file://${rep}`;
    const marks = join(dir, "marks.jsonl");
    const levels = `levels:\n  - interval: 1s\n  - interval: 2s\n`;
    const [port] = freePorts(1);
    const plainCfg = join(dir, "plain.yml");
    await Deno.writeTextFile(
      plainCfg,
      levels +
        `dbs:\n  - path: ${db}\n    replicas:\n      - url: ${url}\n        sync-interval: 100ms\n`,
    );
    const ageCfg = join(dir, "age.yml");
    await Deno.writeTextFile(
      ageCfg,
      `addr: 127.0.0.1:${port}\n` + levels +
        config(db, url, { recipients: [k.recipient], identities: [k.identity] }),
    );
    const problems = /ERROR|sync failed|maintenance failed/;

    // 1. plaintext: the app writes while strata replicates; stopped with L0 files past the last L1
    await runWriter(db, "more", 1, marks);
    let s = new Replicating(["-config", plainCfg]);
    try {
      await s.waitForLog();
      await runWriter(db, "main", 2, marks);
    } finally {
      const out = await s.stop();
      assertEquals(out.code, 0, out.stderr);
    }
    const plainMarks = await readMarks(marks);
    const stored = new FileReplicaClient(rep);
    const newestOf = async () => {
      let n = 0n;
      for (const level of [0, 1, 2, 9]) {
        for (const f of await stored.listFiles(level)) if (f.maxTXID > n) n = f.maxTXID;
      }
      return n;
    };
    const plainEnd = await newestOf();

    // 2. age switched on: a new lineage past the plaintext files, then encrypted files only;
    // L1 and L2 compaction run over the plaintext L0 files left, without reading them
    s = new Replicating(["-config", ageCfg], { LOG_LEVEL: "debug" });
    let log = "";
    try {
      await s.waitForLog();
      await runWriter(db, "more", 3, marks);
      await s.waitForLog(/level=2/, 30_000);
      // the web page names points before the switch by URL, without the keys
      const t = await (await fetch(
        `http://127.0.0.1:${port}/api/timeline?db=${encodeURIComponent(db)}`,
      )).json();
      assertEquals(BigInt(`0x${t.commands.unencryptedThrough}`), plainEnd);
      assertEquals(t.commands.plainRestore, [url]);
      assertEquals(t.commands.restore, ["-config", ageCfg, db]);
    } finally {
      const out = await s.stop();
      log = out.stderr;
      assertEquals(out.code, 0, out.stderr);
    }
    assertMatch(log, /WARN replica holds unencrypted files: starting a new encrypted lineage/);
    assert(!problems.test(log), log);
    // 3. restarted (nothing remembered about where plaintext ends): compaction goes on cleanly
    s = new Replicating(["-config", ageCfg]);
    try {
      await s.waitForLog();
      await runWriter(db, "more", 4, marks);
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      const out = await s.stop();
      assertEquals(out.code, 0, out.stderr);
      assert(!problems.test(out.stderr), out.stderr);
      assert(!/new encrypted lineage/.test(out.stderr), "one new lineage, not one per start");
    }

    // every file past the plaintext history is encrypted; the plaintext ones end at or before it
    let plainFiles = 0;
    for (const level of [0, 1, 2, 9]) {
      for (const f of await stored.listFiles(level)) {
        const bytes = await new Response(await stored.openFile(level, f.minTXID, f.maxTXID))
          .bytes();
        const sealed = new TextDecoder().decode(bytes.subarray(0, 21)) === "age-encryption.org/v1";
        if (!sealed) plainFiles++;
        assert(
          sealed || f.maxTXID <= plainEnd,
          `L${level} ${f.minTXID}-${f.maxTXID} is plaintext past ${plainEnd}`,
        );
      }
    }
    assert(plainFiles > 0, "the plaintext history is still there (nothing deleted)");

    // the latest state and a point after the switch, through the keys; exact
    const restore = async (out: string, args: string[]) =>
      await strata(["restore", "-no-progress", "-o", join(dir, out), ...args]);
    let r = await restore("latest.db", ["-config", ageCfg, db]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "latest.db"))).digest, (await digestOf(db)).digest);
    const after = (await readMarks(marks)).slice(plainMarks.length);
    const m = after[Math.floor(after.length / 2)];
    r = await restore("after.db", [
      "-config",
      ageCfg,
      "-timestamp",
      new Date(m.time).toISOString(),
      db,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "after.db"))).digest, m.digest, "after the switch");
    // a point before it: by URL without keys, exact; through the keys, refused by name
    const p = plainMarks[plainMarks.length - 2];
    const at = new Date(p.time).toISOString();
    r = await restore("before.db", ["-timestamp", at, url]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(join(dir, "before.db"))).digest, p.digest, "before the switch");
    r = await restore("before-keys.db", ["-config", ageCfg, "-timestamp", at, db]);
    assert(r.code !== 0, "plaintext history is not read through the keys");
    assertMatch(r.stderr, /is not age-encrypted.*restore without the age settings/s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

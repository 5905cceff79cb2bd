/**
 * Litestream's replicate flags work in strata (issue 18): -once (with
 * -force-snapshot and -enforce-retention) and -restore-if-db-not-exists (and
 * its dbs key). The app writes from its own process (python3).
 */

import { join } from "node:path";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, Replicating, strata } from "./helpers/strata.ts";
import { createAppDb } from "./helpers/live.ts";
import { python, waitFor } from "./helpers/ops.ts";

async function addRows(db: string, n: number, tag: string): Promise<void> {
  await python(
    `import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for i in range(int(sys.argv[2])):
    with con:
        con.execute("INSERT INTO items (name, body, n) VALUES (?, randomblob(200), ?)", (sys.argv[3], i))`,
    db,
    String(n),
    tag,
  );
}

async function restoredDigest(url: string, dir: string): Promise<string> {
  const out = join(dir, `r-${crypto.randomUUID().slice(0, 8)}.db`);
  const r = await strata(["restore", "-no-progress", "-o", out, url]);
  assertEquals(r.code, 0, r.stderr);
  return (await digestOf(out)).digest;
}

Deno.test("replicate -once uploads what is committed and exits; -force-snapshot adds a snapshot; misuse is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-once-" });
  try {
    const db = join(dir, "app.db");
    await createAppDb(db);
    await addRows(db, 50, "a");
    const rep = join(dir, "replica");
    const url = `file://${rep}`;
    let r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);

    await addRows(db, 30, "b");
    const snaps = (await new FileReplicaClient(rep).listFiles(SNAPSHOT_LEVEL)).length;
    r = await strata(["replicate", "-once", "-force-snapshot", "-enforce-retention", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);
    const after = await new FileReplicaClient(rep).listFiles(SNAPSHOT_LEVEL);
    assertEquals(after.length, snaps + 1, "one more snapshot");

    r = await strata(["replicate", "-force-snapshot", db, url]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /-force-snapshot goes with -once/);
    r = await strata(["replicate", "-once", "-exec", "true", db, url]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /-once and -exec/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-restore-if-db-not-exists (flag or dbs key): a missing database is restored, then its replica continues", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-rine-" });
  try {
    const db = join(dir, "app.db");
    await createAppDb(db);
    await addRows(db, 40, "before");
    const rep = join(dir, "replica");
    const url = `file://${rep}`;
    let r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    const want = (await digestOf(db)).digest;

    // the machine is lost: a new one starts with no database and no meta directory
    for (const p of [db, `${db}-wal`, `${db}-shm`]) await Deno.remove(p).catch(() => {});
    await Deno.remove(join(dir, ".app.db-strata"), { recursive: true });
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `shutdown-sync-timeout: 0\ndbs:\n  - path: ${db}\n    restore-if-db-not-exists: true\n    replicas:\n      - url: ${url}\n`,
    );
    r = await strata(["replicate", "-once", "-config", cfg]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /restored the missing database before replicating it/);
    assertEquals((await digestOf(db)).digest, want, "the database is the replica's state");

    // the app goes on; the same replica takes its commits (one history, no divergence)
    await addRows(db, 10, "after");
    r = await strata(["replicate", "-once", "-restore-if-db-not-exists", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assert(!/diverged|restored the missing/.test(r.stderr), r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);

    // a replica with no backup: the database is left to the app
    const other = join(dir, "new.db");
    r = await strata([
      "replicate",
      "-once",
      "-restore-if-db-not-exists",
      other,
      `file://${join(dir, "empty")}`,
    ]);
    assertMatch(r.stderr, /its replica has no backup/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Litestream's socket commands: info, list, register, unregister; /txid", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-sock-" });
  const sock = join(dir, "strata.sock");
  const a = join(dir, "a.db");
  const b = join(dir, "b.db");
  await createAppDb(a);
  await createAppDb(b);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `socket:\n  enabled: true\n  path: ${sock}\ndbs:\n  - path: ${a}\n    replica:\n      url: file://${
      join(dir, "ra")
    }\n`,
  );
  const rep = new Replicating(["-config", cfg]);
  try {
    await rep.waitForLog(/control socket listening/);
    let r = await strata(["info", "-socket", sock, "-json"]);
    assertEquals(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assertEquals([info.pid, info.database_count], [rep.pid, 1]);

    const rb = `file://${join(dir, "rb")}`;
    r = await strata(["register", "-socket", sock, "-replica", rb, "-json", b]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout).status, "registered");
    r = await strata(["register", "-socket", sock, "-replica", rb, "-json", b]);
    assertEquals(JSON.parse(r.stdout).status, "already_registered");
    // a second database into the same replica would mix histories: refused
    r = await strata(["register", "-socket", sock, "-replica", rb, join(dir, "c.db")]);
    assert(r.code !== 0, "a replica already in use is refused");

    await addRows(b, 20, "registered");
    r = await strata(["sync", "-socket", sock, "-wait", b]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await restoredDigest(rb, dir), (await digestOf(b)).digest);

    r = await strata(["list", "-socket", sock, "-json"]);
    const list = JSON.parse(r.stdout).databases as { path: string; status: string }[];
    assertEquals(list.map((d) => d.path).sort(), [a, b].sort());
    r = await strata(["list", "-socket", sock]);
    assertMatch(r.stdout, new RegExp(`${b} \\[replicating\\] \\(last sync: \\d{4}-`));

    const txid = await controlTxid(sock, b);
    assert(/^[0-9a-f]{16}$/.test(txid), txid);

    r = await strata(["unregister", "-socket", sock, "-json", b]);
    assertEquals(r.code, 0, r.stderr);
    const un = JSON.parse(r.stdout);
    assertEquals([un.status, un.final_txid], ["unregistered", txid]);
    r = await strata(["unregister", "-socket", sock, "-json", b]);
    assertEquals(JSON.parse(r.stdout).status, "already_unregistered");
    r = await strata(["info", "-socket", sock, "-json"]);
    assertEquals(JSON.parse(r.stdout).database_count, 1);
  } finally {
    const out = await rep.stop();
    assertEquals(out.code, 0, out.stderr);
    await Deno.remove(dir, { recursive: true });
  }
});

async function controlTxid(sock: string, db: string): Promise<string> {
  const { controlRequest } = await import("../src/server/mod.ts");
  const a = await controlRequest(sock, "GET", `/txid?path=${encodeURIComponent(db)}`) as {
    txid: string;
  };
  return a.txid;
}

Deno.test("reset removes the local meta directory (refused while replicating); version -verbose; databases -json; restore -parallelism", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-reset-" });
  try {
    const db = join(dir, "app.db");
    await createAppDb(db);
    const url = `file://${join(dir, "rep")}`;
    let r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    const meta = join(dir, ".app.db-strata");

    const rep = new Replicating([db, url]);
    try {
      await rep.waitForLog();
      r = await strata(["reset", db]);
      assert(r.code !== 0, "refused while a replicate holds it");
      assertMatch(r.stderr, /another strata replicate process/);
    } finally {
      await rep.stop();
    }
    r = await strata(["reset", "-dry-run", db]);
    assertEquals(r.code, 0, r.stderr);
    assert(await Deno.stat(meta).then(() => true, () => false), "dry run keeps it");
    r = await strata(["reset", db]);
    assertEquals(r.code, 0, r.stderr);
    assert(!(await Deno.stat(meta).then(() => true, () => false)), "removed");
    // the replica simply continues (the database equals its newest state), then takes new commits
    r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assert(!/diverged/.test(r.stderr), r.stderr);
    await addRows(db, 5, "after reset");
    r = await strata(["replicate", "-once", db, url]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await restoredDigest(url, dir), (await digestOf(db)).digest);

    // a meta-path that is not a strata meta directory (here: the database's own directory) is
    // never removed
    const odd = join(dir, "odd.yml");
    await Deno.writeTextFile(
      odd,
      `dbs:\n  - path: ${db}\n    meta-path: ${dir}\n    replica:\n      url: ${url}\n`,
    );
    r = await strata(["reset", "-config", odd, db]);
    assert(r.code !== 0, "refused");
    assertMatch(r.stderr, /holds the database .*: not removing it/);
    assert(await Deno.stat(db).then(() => true, () => false), "the database is still there");
    const other = join(dir, "other-dir");
    await Deno.mkdir(other);
    await Deno.writeTextFile(join(other, "precious.txt"), "keep me");
    await Deno.writeTextFile(
      odd,
      `dbs:\n  - path: ${db}\n    meta-path: ${other}\n    replica:\n      url: ${url}\n`,
    );
    r = await strata(["reset", "-config", odd, db]);
    assert(r.code !== 0, "refused");
    assertMatch(r.stderr, /is not a strata meta directory/);
    assertEquals(await Deno.readTextFile(join(other, "precious.txt")), "keep me");

    r = await strata(["version", "-verbose"]);
    assertMatch(r.stdout, /^strata .*\nDeno \d+\.\d+\.\d+ \(V8 .*\nOS\/Arch: linux\//);

    const cfg = join(dir, "s.yml");
    await Deno.writeTextFile(cfg, `dbs:\n  - path: ${db}\n    replica:\n      url: ${url}\n`);
    r = await strata(["databases", "-json", "-config", cfg]);
    assertEquals(JSON.parse(r.stdout), [{
      path: db,
      replica: "file",
      replicas: [{ type: "file", path: join(dir, "rep") }],
    }]);

    // ltx: level 0 by default, Litestream's JSON fields
    r = await strata(["ltx", "-json", url]);
    const files = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert(files.length > 0 && files.every((f) => f.level === 0), r.stdout);
    for (const k of ["min_txid", "max_txid", "size", "timestamp"]) assert(k in files[0], k);

    r = await strata(["restore", "-json", "-no-progress", "-o", join(dir, "j.db"), url]);
    const j = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assertEquals([j.db_path, j.integrity_check], [join(dir, "j.db"), "quick"]);
    assert(typeof j.duration_ms === "number" && /^[0-9a-f]{16}$/.test(j.txid), r.stdout);

    r = await strata([
      "restore",
      "-parallelism",
      "8",
      "-no-progress",
      "-o",
      join(dir, "p.db"),
      url,
    ]);
    assertEquals(r.code, 0, r.stderr);
    r = await strata(["restore", "-parallelism", "0", "-o", join(dir, "q.db"), url]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /-parallelism must be a number from 1 to 64/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heartbeat-url: pinged while every replica is backed up, not while one fails; logging.stderr: false logs to stdout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-heartbeat-" });
  let pings = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => {
      pings++;
      return new Response("ok");
    },
  );
  const db = join(dir, "app.db");
  const rep = join(dir, "replica");
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `heartbeat-url: http://127.0.0.1:${server.addr.port}/ping?token=secret\nheartbeat-interval: 1s\nlogging:\n  stderr: false\ndbs:\n  - path: ${db}\n    replica:\n      url: file://${rep}\n      sync-interval: 100ms\n`,
  );
  const s = new Replicating(["-config", cfg]);
  try {
    await waitFor("two heartbeat pings", () => pings >= 2);
    // the replica fails (a file where its directory was) while the app writes: no more pings
    await Deno.rename(rep, rep + ".away");
    await Deno.writeTextFile(rep, "not a directory");
    await addRows(db, 5, "while down");
    await new Promise((r) => setTimeout(r, 2500)); // the last good sync is older than the interval
    const before = pings;
    await new Promise((r) => setTimeout(r, 2500));
    assertEquals(pings, before, "no ping while a replica fails");
    await Deno.remove(rep);
    await Deno.rename(rep + ".away", rep);
    await waitFor("pings again once the replica is back", () => pings > before);
  } finally {
    const out = await s.stop();
    await server.shutdown();
    assertMatch(out.stdout, /INFO replicating db=/);
    assert(!/INFO replicating db=/.test(out.stderr), "logs went to stdout");
    assert(!out.stdout.includes("secret"), "the heartbeat URL's token is never logged");
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Operating a running `strata replicate` (a separate process) while a Python
 * app writes: the Prometheus endpoint scraped over HTTP, and the control
 * socket driven with `strata sync -wait`, `stop`, `start` and `status`.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertNotEquals } from "./helpers/assert.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./helpers/strata.ts";
import { freePorts } from "./helpers/test_tools.ts";
import { addNote, notesOf, restoreTo, sample, scrape, waitFor } from "./helpers/ops.ts";

Deno.test("metrics: scraped from a running replicate, values move as the app writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-metrics-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const marks = join(dir, "marks.jsonl");
  const [port] = freePorts(1);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `addr: 127.0.0.1:${port}
dbs:
  - path: ${db}
    min-checkpoint-page-count: 50
    replicas:
      - url: file://${replica}
        sync-interval: 100ms
`,
  );
  let rep: Replicating | null = null;
  try {
    await runWriter(db, "more", 1, marks);
    rep = new Replicating(["-config", cfg]);
    const L = { db };
    const first = await waitFor("a first scrape with the database", async () => {
      const s = await scrape(port);
      return sample(s, "litestream_txid", L) !== undefined &&
          sample(s, "strata_replica_txid", L)! >= 1
        ? s
        : null;
    });
    const txid0 = sample(first, "litestream_txid", L)!;
    const syncs0 = sample(first, "litestream_sync_count", L)!;
    const puts0 = sample(first, "litestream_replica_operation_total", {
      replica_type: "file",
      operation: "PUT",
    })!;
    assert(txid0 >= 1, `txid ${txid0}`);
    assert(puts0 >= 1, `PUT count ${puts0}`);
    assert(sample(first, "litestream_db_size", L)! > 0, "db size");
    assertEquals(sample(first, "strata_replica_divergence", L), 0);
    // Litestream's disk-full gauge and compaction-verify counter are there (nothing failing)
    assertEquals(sample(first, "litestream_disk_full", L), 0);
    assertEquals(sample(first, "litestream_compaction_verify_error_count", L), 0);

    await runWriter(db, "more", 2, marks);
    const after = await waitFor("the replica to catch up with the writes", async () => {
      const s = await scrape(port);
      const t = sample(s, "litestream_txid", L)!;
      return t > txid0 && sample(s, "strata_replica_txid", L) === t ? s : null;
    });
    assert(sample(after, "litestream_sync_count", L)! > syncs0, "sync count grew");
    assertEquals(sample(after, "litestream_sync_error_count", L), 0);
    assert(sample(after, "litestream_total_wal_bytes", L)! > 0, "WAL bytes counted");
    assert(
      sample(after, "litestream_checkpoint_count", { db, mode: "PASSIVE" })! > 0,
      "a PASSIVE checkpoint was counted",
    );
    const puts1 = sample(after, "litestream_replica_operation_total", {
      replica_type: "file",
      operation: "PUT",
    })!;
    assert(puts1 > puts0, `PUT count ${puts0} -> ${puts1}`);
    assert(
      sample(after, "litestream_replica_operation_bytes", {
        replica_type: "file",
        operation: "PUT",
      })! > 0,
      "PUT bytes",
    );
    assertEquals(
      sample(after, "litestream_replica_operation_duration_seconds_count", {
        replica_type: "file",
        operation: "PUT",
      }),
      puts1,
    );
    assertEquals(sample(after, "strata_replica_lag_seconds", L), 0);
    assertEquals(sample(after, "strata_replica_error", L), 0);

    const notFound = await fetch(`http://127.0.0.1:${port}/other`);
    await notFound.body?.cancel();
    assertEquals(notFound.status, 404);

    const stopped = await rep.stop("SIGTERM");
    rep = null;
    assertEquals(stopped.code, 0, stopped.stderr);
    const all = await readMarks(marks);
    const restored = await restoreTo(dir, "restored.db", `file://${replica}`);
    assertEquals((await digestOf(restored)).digest, all[all.length - 1].digest);
  } finally {
    await rep?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control socket: sync -wait uploads at once; stop, start, status; errors named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-socket-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const url = `file://${replica}`;
  const sock = join(dir, "strata.sock");
  const cfg = join(dir, "strata.yml");
  // a long sync interval: nothing but the initial sync, sync -wait and the final sync uploads
  const [port] = freePorts(1);
  await Deno.writeTextFile(
    cfg,
    `addr: 127.0.0.1:${port}
socket:
  enabled: true
  path: ${sock}
dbs:
  - path: ${db}
    replicas:
      - url: ${url}
        sync-interval: 10m
`,
  );
  const replicating = async () => sample(await scrape(port), "strata_db_replicating", { db });
  let rep: Replicating | null = null;
  try {
    await addNote(db, "before start");
    rep = new Replicating(["-config", cfg]);
    // the first sync (which starts beside capturing) has uploaded what was there
    await waitFor("the socket and the first upload", async () => {
      const r = await strata(["status", "-socket", sock, "-json"]);
      const d = r.code === 0 ? JSON.parse(r.stdout)[0] : null;
      return d?.state === "replicating" && d.replicas[0].txid !== null &&
        d.replicas[0].txid === d.local.txid;
    });
    const mode = (await Deno.stat(sock)).mode! & 0o777;
    assertEquals(mode, 0o600);

    await addNote(db, "durable?");
    // not uploaded yet (10 minute interval)
    const early = await restoreTo(dir, "early.db", url);
    assertEquals(await notesOf(early), ["before start"]);

    const synced = await strata(["sync", "-wait", "-socket", sock, "-json", db]);
    assertEquals(synced.code, 0, synced.stderr);
    const answer = JSON.parse(synced.stdout);
    assertEquals(answer.status, "synced");
    assertEquals(answer.path, db);
    assertEquals(answer.replicated_txid, answer.txid);
    // Litestream's names too
    assertEquals([answer.db_path, answer.replica_txid], [db, answer.txid]);
    // sync -wait returned: the write is in the replica now
    const now = await restoreTo(dir, "now.db", url);
    assertEquals(await notesOf(now), ["before start", "durable?"]);

    // live status
    const st = await strata(["status", "-socket", sock, "-json", db]);
    assertEquals(st.code, 0, st.stderr);
    const [s] = JSON.parse(st.stdout);
    assertEquals(s.db, db);
    assertEquals(s.state, "replicating");
    assertEquals(s.local.txid, answer.txid);
    assertEquals(s.replicas[0].txid, answer.txid);
    assertEquals(s.replicas[0].behindTXIDs, 0);
    assertEquals(s.replicas[0].error, null);
    const text = await strata(["status", "-socket", sock, db]);
    assertMatch(text.stdout, /\(replicating\)/);

    // stop: final sync, the process keeps running; writes meanwhile are not captured
    const stop = await strata(["stop", "-socket", sock, db]);
    assertEquals(stop.code, 0, stop.stderr);
    assertMatch(stop.stdout, /status: stopped/);
    await addNote(db, "while stopped");
    const refused = await strata(["sync", "-socket", sock, db]);
    assertNotEquals(refused.code, 0);
    assertMatch(refused.stderr, /is stopped, not replicating/);
    const st2 = JSON.parse((await strata(["status", "-socket", sock, "-json"])).stdout);
    assertEquals(st2[0].state, "stopped");
    assertEquals(await replicating(), 0);
    assertMatch(
      (await strata(["status", "-socket", sock, db])).stdout,
      /\(stopped\)\n {2}not replicating \(strata start /,
    );
    assertEquals(
      (await strata(["stop", "-socket", sock, db])).stdout.includes("already_stopped"),
      true,
    );

    // start again: picks up what was written meanwhile
    const start = await strata(["start", "-socket", sock, db]);
    assertEquals(start.code, 0, start.stderr);
    assertMatch(start.stdout, /status: started/);
    assertEquals(await replicating(), 1);
    await addNote(db, "after restart");
    const again = await strata(["sync", "-wait", "-socket", sock, db]);
    assertEquals(again.code, 0, again.stderr);
    const later = await restoreTo(dir, "later.db", url);
    assertEquals(await notesOf(later), [
      "before start",
      "durable?",
      "while stopped",
      "after restart",
    ]);

    // errors name the database / socket
    const unknown = await strata(["sync", "-socket", sock, join(dir, "other.db")]);
    assertNotEquals(unknown.code, 0);
    assertMatch(unknown.stderr, /other\.db is not replicated by this process/);
    const noSocket = await strata(["sync", "-socket", join(dir, "nope.sock"), db]);
    assertNotEquals(noSocket.code, 0);
    assertMatch(noSocket.stderr, /cannot reach the control socket .*nope\.sock/);

    const stopped = await rep.stop();
    rep = null;
    assertEquals(stopped.code, 0, stopped.stderr);
    // the socket file is removed at exit
    assertEquals(await Deno.stat(sock).then(() => true, () => false), false);
  } finally {
    await rep?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a diverged replica: the divergence gauge, live status and sync -wait report it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-diverged-" });
  const db = join(dir, "app.db");
  const url = `file://${join(dir, "replica")}`;
  const sock = join(dir, "strata.sock");
  const [port] = freePorts(1);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `addr: 127.0.0.1:${port}
socket:
  enabled: true
  path: ${sock}
dbs:
  - path: ${db}
    replicas:
      - url: ${url}
        sync-interval: 100ms
`,
  );
  let rep: Replicating | null = null;
  try {
    await addNote(db, "one");
    rep = new Replicating(["-config", cfg]);
    const L = { db };
    await waitFor("the first upload", async () => {
      const s = await scrape(port);
      return sample(s, "strata_replica_txid", L)! >= 1 &&
        sample(s, "strata_replica_divergence", L) === 0;
    });
    let out = await rep.stop();
    rep = null;
    assertEquals(out.code, 0, out.stderr);

    // the local position is lost and the app writes on: the replica no longer continues it
    await Deno.remove(join(dir, ".app.db-strata"), { recursive: true });
    await addNote(db, "two");
    rep = new Replicating(["-config", cfg]);
    await addNote(db, "three");
    await waitFor("the divergence gauge", async () => {
      return sample(await scrape(port), "strata_replica_divergence", L) === 1;
    });
    const st = await strata(["status", "-socket", sock, "-json"]);
    assertEquals(st.code, 0, st.stderr);
    assertMatch(
      JSON.parse(st.stdout)[0].replicas[0].diverged,
      /\(local [0-9a-f]{16}\/[0-9a-f]{16}, replica 0000000000000001\/[0-9a-f]{16}, detected /,
    );
    const sync = await strata(["sync", "-wait", "-socket", sock, db]);
    assertNotEquals(sync.code, 0);
    assertMatch(sync.stderr, /has diverged \(uploads to it stopped\)/);
    out = await rep.stop();
    rep = null;
    assertEquals(out.code, 0, out.stderr);
  } finally {
    await rep?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a busy metrics address, a socket path that is a file or in no directory: errors name them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-serve-errors-" });
  const db = join(dir, "app.db");
  const cfg = join(dir, "strata.yml");
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const base = `dbs:\n  - path: ${db}\n    replica:\n      url: file://${join(dir, "replica")}\n`;
  try {
    await addNote(db, "x");
    const cases: [string, RegExp][] = [
      [
        `addr: 127.0.0.1:${(busy.addr as Deno.NetAddr).port}\n`,
        /metrics address 127\.0\.0\.1:\d+: cannot listen: Address already in use/,
      ],
      [
        `socket:\n  enabled: true\n  path: ${join(dir, "no", "such", "s.sock")}\n`,
        /control socket .*no\/such\/s\.sock: cannot listen/,
      ],
      [
        `socket:\n  enabled: true\n  path: ${cfg}\n`,
        /control socket .*strata\.yml: exists and is not a socket; not replacing it/,
      ],
    ];
    for (const [extra, re] of cases) {
      await Deno.writeTextFile(cfg, extra + base);
      const r = await strata(["replicate", "-config", cfg, "-exec", "true"]);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, re);
    }
    // the config file named as the socket path is untouched
    assertMatch(await Deno.readTextFile(cfg), /^socket:/);
  } finally {
    busy.close();
    await Deno.remove(dir, { recursive: true });
  }
});

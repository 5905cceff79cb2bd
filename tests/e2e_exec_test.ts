/**
 * `strata replicate -exec`: the app runs as strata's child (a real Python
 * process); its exit code becomes strata's, signals reach it, and what it
 * wrote last is in the replica once strata exits (the final sync: the sync
 * interval is too long for anything else to upload it).
 */

import { join } from "node:path";
import { assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, readMarks, Replicating, strata } from "./helpers/strata.ts";
import { PROJECT_ROOT } from "./helpers/vectors.ts";
import { addNote, notesOf, restoreTo, waitFor } from "./helpers/ops.ts";

const WRITER = join(PROJECT_ROOT, "tests/helpers/writer.py");

async function setup(prefix: string, exec?: (db: string) => string) {
  const dir = await Deno.makeTempDir({ prefix });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `${exec ? `exec: ${JSON.stringify(exec(db))}\n` : ""}dbs:
  - path: ${db}
    replicas:
      - url: file://${replica}
        sync-interval: 10m
`,
  );
  await addNote(db, "first");
  return { dir, db, replica, url: `file://${replica}`, cfg };
}

Deno.test("-exec: the child's writes are all in the replica when strata exits with its code", async () => {
  const t = await setup("strata-exec-");
  try {
    const marks = join(t.dir, "marks.jsonl");
    // the child writes, then fails with 7: strata still does the final sync and exits 7
    const cmd = `sh -c 'python3 "${WRITER}" "${t.db}" more 3 "${marks}" && exit 7'`;
    const r = await strata(["replicate", "-config", t.cfg, "-exec", cmd]);
    assertEquals(r.code, 7, r.stderr);
    assertMatch(r.stderr, /child process exited.*code=7/);
    const all = await readMarks(marks);
    const restored = await restoreTo(t.dir, "restored.db", t.url);
    assertEquals((await digestOf(restored)).digest, all[all.length - 1].digest);
  } finally {
    await Deno.remove(t.dir, { recursive: true });
  }
});

Deno.test("exec: in the config file runs the app the same way; exit code 0", async () => {
  const t = await setup(
    "strata-exec-cfg-",
    (db) =>
      `python3 -c "import sqlite3; c = sqlite3.connect('${db}'); c.execute(\\"INSERT INTO notes (note) VALUES ('from config')\\"); c.commit()"`,
  );
  try {
    const r = await strata(["replicate", "-config", t.cfg]);
    assertEquals(r.code, 0, r.stderr);
    const restored = await restoreTo(t.dir, "restored.db", t.url);
    assertEquals(await notesOf(restored), ["first", "from config"]);
  } finally {
    await Deno.remove(t.dir, { recursive: true });
  }
});

Deno.test("-exec: SIGTERM to strata reaches the child; its last write is synced; its code returned", async () => {
  const t = await setup("strata-exec-signal-");
  const ready = join(t.dir, "ready");
  const app = join(t.dir, "app.py");
  await Deno.writeTextFile(
    app,
    `import signal, sqlite3, sys, time
db, ready = sys.argv[1], sys.argv[2]
def on_term(signum, frame):
    con = sqlite3.connect(db, timeout=30)
    con.execute("INSERT INTO notes (note) VALUES ('got SIGTERM')")
    con.commit()
    con.close()
    sys.exit(42)
signal.signal(signal.SIGTERM, on_term)
open(ready, "w").close()
while True:
    time.sleep(0.05)
`,
  );
  let rep: Replicating | null = new Replicating([
    "-config",
    t.cfg,
    "-exec",
    `python3 ${app} ${t.db} ${ready}`,
  ]);
  try {
    await waitFor("the child to be ready", () => Deno.stat(ready).then(() => true));
    const r = await rep.stop("SIGTERM");
    rep = null;
    assertEquals(r.code, 42, r.stderr);
    assertMatch(r.stderr, /forwarding signal to child process signal=SIGTERM/);
    const restored = await restoreTo(t.dir, "restored.db", t.url);
    assertEquals(await notesOf(restored), ["first", "got SIGTERM"]);
  } finally {
    await rep?.stop("SIGKILL");
    await Deno.remove(t.dir, { recursive: true });
  }
});

Deno.test("-exec: a command that cannot start is an error naming it; replication still stops cleanly", async () => {
  const t = await setup("strata-exec-missing-");
  try {
    const r = await strata(["replicate", "-config", t.cfg, "-exec", "/nonexistent/app --flag"]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /exec .*\/nonexistent\/app.*cannot start/);
    const bad = await strata(["replicate", "-config", t.cfg, "-exec", "python3 'unclosed"]);
    assertEquals(bad.code, 1);
    assertMatch(bad.stderr, /unclosed single quote/);
  } finally {
    await Deno.remove(t.dir, { recursive: true });
  }
});

Deno.test("a signal while waiting for another replicate's lease: exits at once, opens nothing, never starts the child", async () => {
  const t = await setup("strata-exec-lease-");
  const marker = join(t.dir, "child-ran");
  let a: Replicating | null = new Replicating([t.db, t.url]);
  let b: Deno.ChildProcess | null = null;
  try {
    await waitFor("the first replicate's lease", () => Deno.stat(join(t.replica, "lock.json")));
    b = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(PROJECT_ROOT, "main.ts"),
        "replicate",
        "-exec",
        `touch ${marker}`,
        t.db,
        t.url,
      ],
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // read the second one's log until it says it is waiting for the lease
    let log = "";
    const reader = b.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (!log.includes("replica lease not held")) {
      const { value, done } = await reader.read();
      if (done) break;
      log += value;
    }
    b.kill("SIGTERM");
    const rest = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        log += value;
      }
    })();
    let exited = false;
    b.status.then(() => (exited = true));
    await waitFor("the second replicate to exit after SIGTERM", () => exited, 20);
    await rest;
    const status = await b.status;
    b = null;
    assertEquals(status.code, 143, log);
    assertMatch(log, /signal received, syncing before exit signal=SIGTERM/);
    assertEquals(/INFO replicating/.test(log), false, log);
    assertEquals(await Deno.stat(marker).then(() => true, () => false), false);
    const outA = await a.stop();
    a = null;
    assertEquals(outA.code, 0, outA.stderr);
  } finally {
    try {
      b?.kill("SIGKILL");
      await b?.status;
    } catch { /* gone */ }
    await a?.stop();
    await Deno.remove(t.dir, { recursive: true });
  }
});

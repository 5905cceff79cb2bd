/**
 * Directory replication: every database under `dir` matching `pattern`
 * (recursively), each to `<replica>/<relative path>`, including databases
 * created after strata started (`watch`).
 */

import { join } from "node:path";
import { assertEquals, assertMatch } from "./helpers/assert.ts";
import { Replicating, strata } from "./helpers/strata.ts";
import { addNote, notesOf, restoreTo, waitFor } from "./helpers/ops.ts";

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

Deno.test("dir + pattern + recursive + watch: databases created after start are replicated", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-dir-" });
  const data = join(dir, "data");
  const replica = join(dir, "replica");
  const sock = join(dir, "strata.sock");
  const cfg = join(dir, "strata.yml");
  await Deno.mkdir(data);
  await Deno.writeTextFile(
    cfg,
    `socket:
  enabled: true
  path: ${sock}
dbs:
  - dir: ${data}
    pattern: "*.db"
    recursive: true
    watch: true
    replicas:
      - url: file://${replica}
        sync-interval: 100ms
`,
  );
  let rep: Replicating | null = null;
  try {
    await addNote(join(data, "a.db"), "a1");
    await Deno.writeTextFile(join(data, "notes.db"), "not a database, despite the name");
    await addNote(join(data, "skipped.sqlite"), "other pattern");
    rep = new Replicating(["-config", cfg]);
    const listed = async () => {
      const r = await strata(["status", "-socket", sock, "-json"]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { db: string; state: string }[]) : [];
    };
    await waitFor("a.db replicated", async () => (await listed()).length === 1);

    // created after start: one at the top, one in a new subdirectory
    await addNote(join(data, "b.db"), "b1");
    await Deno.mkdir(join(data, "sub", "deeper"), { recursive: true });
    await addNote(join(data, "sub", "deeper", "c.db"), "c1");
    await waitFor(
      "b.db and sub/deeper/c.db to be picked up",
      async () =>
        (await listed()).filter((d) => d.state === "replicating").map((d) => d.db).sort()
          .join(",") ===
          [join(data, "a.db"), join(data, "b.db"), join(data, "sub/deeper/c.db")].join(","),
    );
    await addNote(join(data, "b.db"), "b2");
    await addNote(join(data, "sub", "deeper", "c.db"), "c2");
    for (const p of ["a.db", "b.db", "sub/deeper/c.db"]) {
      const s = await strata(["sync", "-wait", "-socket", sock, join(data, p)]);
      assertEquals(s.code, 0, s.stderr);
    }

    // a database removed from the directory is stopped (after its final sync) and forgotten
    for (const x of ["", "-wal", "-shm"]) {
      await Deno.remove(join(data, "sub", "deeper", "c.db" + x)).catch(() => {});
    }
    await waitFor("sub/deeper/c.db to be dropped", async () => (await listed()).length === 2);

    const stopped = await rep.stop();
    rep = null;
    assertEquals(stopped.code, 0, stopped.stderr);
    assertMatch(stopped.stderr, /directory replication: found a database .*b\.db/);
    assertMatch(stopped.stderr, /directory replication: database removed .*c\.db/);

    // each database has its own replica: <replica>/<path relative to dir>
    assertEquals(await notesOf(await restoreTo(dir, "a.db", `file://${replica}/a.db`)), ["a1"]);
    assertEquals(await notesOf(await restoreTo(dir, "b.db", `file://${replica}/b.db`)), [
      "b1",
      "b2",
    ]);
    assertEquals(
      await notesOf(await restoreTo(dir, "c.db", `file://${replica}/sub/deeper/c.db`)),
      ["c1", "c2"],
    );
    assertEquals(await exists(join(replica, "notes.db")), false);
    assertEquals(await exists(join(replica, "skipped.sqlite")), false);
  } finally {
    await rep?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dir without watch: the databases there at start; none matching is an error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-dir-once-" });
  const data = join(dir, "data");
  const replica = join(dir, "replica");
  const cfg = join(dir, "strata.yml");
  await Deno.mkdir(join(data, "sub"), { recursive: true });
  const write = (pattern: string, recursive: boolean) =>
    Deno.writeTextFile(
      cfg,
      `dbs:
  - dir: ${data}
    pattern: "${pattern}"
    recursive: ${recursive}
    replicas:
      - url: file://${replica}
`,
    );
  try {
    await addNote(join(data, "one.db"), "one");
    await addNote(join(data, "sub", "two.db"), "two");
    await write("*.sqlite", false);
    const none = await strata(["replicate", "-config", cfg, "-exec", "true"]);
    assertEquals(none.code, 1);
    assertMatch(none.stderr, /no SQLite databases in directory .*data match pattern \*\.sqlite/);

    // a directory that is not there: named, with or without watch
    for (const watch of [false, true]) {
      await Deno.writeTextFile(
        cfg,
        `dbs:\n  - dir: ${
          join(dir, "missing")
        }\n    pattern: "*.db"\n    watch: ${watch}\n    replica:\n      url: file://${replica}\n`,
      );
      const missing = await strata(["replicate", "-config", cfg, "-exec", "true"]);
      assertEquals(missing.code, 1, missing.stderr);
      assertMatch(missing.stderr, /directory .*missing: /);
    }

    // not recursive: only one.db
    await write("*.db", false);
    const r = await strata(["replicate", "-config", cfg, "-exec", "true"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await notesOf(await restoreTo(dir, "one.db", `file://${replica}/one.db`)), [
      "one",
    ]);
    assertEquals(await exists(join(replica, "sub")), false);

    // the config's directory entry names each database's replica for restore and databases
    const out = join(dir, "by-path.db");
    const byPath = await strata(["restore", "-config", cfg, "-o", out, join(data, "one.db")]);
    assertEquals(byPath.code, 0, byPath.stderr);
    assertEquals(await notesOf(out), ["one"]);
    const outside = await strata(["restore", "-config", cfg, "-o", out, join(data, "sub/two.db")]);
    assertEquals(outside.code, 2); // not recursive: sub/two.db is not configured
    assertMatch(outside.stderr, /sub\/two\.db is not in the config file/);
    const st = await strata(["status", "-config", cfg, "-json"]);
    assertEquals(st.code, 0, st.stderr);
    const [one] = JSON.parse(st.stdout);
    assertEquals(one.db, join(data, "one.db"));
    assertEquals(one.replicas[0].replica, `file:${replica}/one.db`);
    assertEquals(one.replicas[0].txid, one.local.txid);
    const listed = await strata(["databases", "-config", cfg]);
    assertMatch(listed.stdout, new RegExp(`${data}/\\*\\.db\tfile:${replica}/…`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

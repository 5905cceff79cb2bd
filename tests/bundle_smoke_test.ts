/**
 * The single-file strata (what `deno compile` embeds, as one bundled file:
 * CI cannot download Deno's compile runtime) run end to end from an empty
 * directory far from the source tree: replicate while sqlite3 writes (a
 * separate process), restore, status, verify, clone + restore + verify of
 * the branch, and the demo (which must find nothing of the source tree
 * either).
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { bundle } from "../compile/build.ts";

const dec = new TextDecoder();

Deno.test("bundled strata from an empty directory: replicate, restore, status, verify, clone, demo", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-bundle-" });
  try {
    const built = await bundle(join(dir, "build", "strata.js"));
    const run = join(dir, "run");
    await Deno.mkdir(run);
    await Deno.copyFile(built, join(run, "strata.js"));
    await Deno.remove(join(dir, "build"), { recursive: true });
    const env = { NO_COLOR: "1", STRATA_CACHE_SIZE: "0", DENO_NO_UPDATE_CHECK: "1" };
    const strata = async (...args: string[]) => {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-config", "--no-lock", "strata.js", ...args],
        cwd: run,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    };
    const sql = async (db: string, q: string) => {
      const r = await new Deno.Command("sqlite3", { args: [db, q], cwd: run, stdout: "piped" })
        .output();
      assertEquals(r.code, 0, `sqlite3 ${q}`);
      return dec.decode(r.stdout).trim();
    };

    const v = await strata("version");
    assertEquals(v.code, 0, v.stderr);
    assertMatch(v.stdout, /^strata /);

    await sql(
      "app.db",
      "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); " +
        "INSERT INTO t (v) SELECT hex(randomblob(200)) FROM generate_series(1, 500);",
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-config",
        "--no-lock",
        "strata.js",
        "replicate",
        "app.db",
        "replica",
      ],
      cwd: run,
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = child.output();
    try {
      // wait for the first upload, then write more while it runs
      for (let i = 0; i < 200; i++) {
        const files = await Array.fromAsync(Deno.readDir(join(run, "replica", "ltx", "9")))
          .catch(() => []);
        if (files.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      for (let i = 0; i < 5; i++) {
        await sql(
          "app.db",
          `INSERT INTO t (v) VALUES ('row ${i}'); UPDATE t SET v = 'u' WHERE id = ${i + 1};`,
        );
        await new Promise((r) => setTimeout(r, 150));
      }
    } finally {
      child.kill("SIGINT");
    }
    const stopped = await out;
    assertEquals(stopped.code, 0, dec.decode(stopped.stderr));
    const want = await sql("app.db", "SELECT count(*), sum(length(v)), group_concat(v) FROM t");

    const restored = await strata("restore", "-o", "restored.db", `file://${run}/replica`);
    assertEquals(restored.code, 0, restored.stderr);
    assertEquals(
      await sql("restored.db", "SELECT count(*), sum(length(v)), group_concat(v) FROM t"),
      want,
    );
    assertEquals(await sql("restored.db", "PRAGMA integrity_check"), "ok");

    await Deno.writeTextFile(
      join(run, "strata.yml"),
      `dbs:\n  - path: ${join(run, "app.db")}\n    replicas:\n      - url: file://${
        join(run, "replica")
      }\n`,
    );
    const status = await strata("status", "-config", "strata.yml");
    assertEquals(status.code, 0, status.stderr);
    assert(status.stdout.includes("app.db"), status.stdout);

    const verified = await strata("verify", "-config", "strata.yml", join(run, "app.db"));
    assertEquals(verified.code, 0, verified.stdout + verified.stderr);

    const cloned = await strata("clone", "-txid", "2", "replica", "branch");
    assertEquals(cloned.code, 0, cloned.stderr);
    const br = await strata("restore", "-o", "branch.db", `file://${run}/branch`);
    assertEquals(br.code, 0, br.stderr);
    assertMatch(br.stdout, /to TXID 0000000000000002/);
    assertEquals(await sql("branch.db", "PRAGMA integrity_check"), "ok");
    const vb = await strata("verify", `file://${run}/branch`);
    assertEquals(vb.code, 0, vb.stdout + vb.stderr);

    const demo = await strata("demo");
    assertEquals(demo.code, 0, demo.stderr);
    assertMatch(demo.stdout, /demo passed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The single-file strata (what `deno compile` embeds, as one bundled file:
 * CI cannot download Deno's compile runtime) run end to end from an empty
 * directory far from the source tree: replicate while sqlite3 writes (a
 * separate process), restore, status, verify, clone + restore + verify of
 * the branch, the demo (which must find nothing of the source tree either),
 * and replication to S3 (fauxqs) and SFTP (sshd) verified from there too, so
 * every lazily imported npm client is proven to load from the one file.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { bundle } from "../compile/build.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { startSshd } from "./helpers/sshd.ts";
import { freePorts } from "./helpers/test_tools.ts";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";

const dec = new TextDecoder();

async function waitFor(cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** LTX files under `root/ltx/*` (0 when there is none). */
async function ltxFiles(root: string): Promise<number> {
  let n = 0;
  for (const l of ["0", "9"]) {
    for (const e of await Array.fromAsync(Deno.readDir(join(root, "ltx", l))).catch(() => [])) {
      if (e.name.endsWith(".ltx")) n++;
    }
  }
  return n;
}

/** LTX files of levels 0 and 9 in the S3 replica `bucket/app`. */
async function s3Files(endpoint: string, bucket: string): Promise<number> {
  const client = new S3ReplicaClient({
    bucket,
    path: "app",
    endpoint,
    forcePathStyle: true,
    accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
    secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
  });
  try {
    return (await client.listFiles(0)).length + (await client.listFiles(9)).length;
  } finally {
    await client.close();
  }
}

Deno.test("bundled strata from an empty directory: replicate, restore, status, verify, clone, demo, S3 and SFTP", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-bundle-" });
  try {
    const built = await bundle(join(dir, "build", "strata.js"));
    const run = join(dir, "run");
    await Deno.mkdir(run);
    await Deno.copyFile(built, join(run, "strata.js"));
    await Deno.remove(join(dir, "build"), { recursive: true });
    const env = {
      NO_COLOR: "1",
      STRATA_CACHE_SIZE: "0",
      DENO_NO_UPDATE_CHECK: "1",
      ...TEST_CREDENTIALS,
    };
    const command = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--no-config", "--no-lock", "strata.js", ...args],
        cwd: run,
        env,
        stdout: "piped",
        stderr: "piped",
      });
    const strata = async (...args: string[]) => {
      const r = await command(args).output();
      return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
    };
    const replicate = (args: string[]) => command(["replicate", ...args]).spawn();
    const sql = async (db: string, q: string) => {
      const r = await new Deno.Command("sqlite3", { args: [db, q], cwd: run, stdout: "piped" })
        .output();
      assertEquals(r.code, 0, `sqlite3 ${q}`);
      return dec.decode(r.stdout).trim();
    };

    const v = await strata("version");
    assertEquals(v.code, 0, v.stderr);
    assertMatch(v.stdout, /^strata /);

    // about 10 MB: its full copy is encoded, and its restore decoded, on worker threads (the
    // page kernel's source is built into each worker: this proves it survives bundling)
    await sql(
      "app.db",
      "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); " +
        "INSERT INTO t (v) SELECT hex(randomblob(400)) FROM generate_series(1, 12000);",
    );
    const rep = replicate(["app.db", "replica"]);
    try {
      // wait for the first upload, then write more while it runs
      await waitFor(async () => (await ltxFiles(join(run, "replica"))) > 0);
      for (let i = 0; i < 5; i++) {
        await sql(
          "app.db",
          `INSERT INTO t (v) VALUES ('row ${i}'); UPDATE t SET v = 'u' WHERE id = ${i + 1};`,
        );
        await new Promise((r) => setTimeout(r, 150));
      }
    } finally {
      rep.kill("SIGINT");
    }
    const stopped = await rep.output();
    assertEquals(stopped.code, 0, dec.decode(stopped.stderr));
    const want = await sql("app.db", "SELECT count(*), sum(length(v)), group_concat(v) FROM t");

    // LOG_LEVEL=debug: the restore says it decoded on worker threads
    const restoredOut = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", "--no-lock", "strata.js", "restore", "-o", "restored.db"]
        .concat(`file://${run}/replica`),
      cwd: run,
      env: { ...env, LOG_LEVEL: "debug" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const restored = { code: restoredOut.code, stderr: dec.decode(restoredOut.stderr) };
    assertEquals(restored.code, 0, restored.stderr);
    assertMatch(restored.stderr, /pages decoded on worker threads threads=[1-9]/);
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

    const cloned = await strata("clone", "replica", "branch");
    assertEquals(cloned.code, 0, cloned.stderr);
    const br = await strata("restore", "-o", "branch.db", `file://${run}/branch`);
    assertEquals(br.code, 0, br.stderr);
    assertEquals(
      await sql("branch.db", "SELECT count(*), sum(length(v)), group_concat(v) FROM t"),
      want,
    );
    assertEquals(await sql("branch.db", "PRAGMA integrity_check"), "ok");
    const vb = await strata("verify", `file://${run}/branch`);
    assertEquals(vb.code, 0, vb.stdout + vb.stderr);

    // an age-encrypted replica (the payload opened on the decryption worker: its source is
    // built into the worker too) and the web page with its assets, from the one file
    const identity = await generateIdentity();
    const [port] = freePorts(1);
    await Deno.writeTextFile(
      join(run, "age.yml"),
      `addr: 127.0.0.1:${port}\ndbs:\n  - path: ${join(run, "app.db")}\n    replicas:\n` +
        `      - url: file://${join(run, "aged")}\n        age:\n` +
        `          recipients: [${await identityToRecipient(identity)}]\n` +
        `          identities: [${identity}]\n`,
    );
    const aged = replicate(["-config", "age.yml"]);
    try {
      const page = `http://127.0.0.1:${port}`;
      const timeline = async () => {
        const r = await fetch(`${page}/api/timeline?db=${encodeURIComponent(join(run, "app.db"))}`)
          .catch(() => null);
        return r?.ok ? await r.json() : (await r?.body?.cancel(), null);
      };
      await waitFor(async () => ((await timeline())?.points.length ?? 0) > 0, 60_000);
      const home = await fetch(`${page}/`);
      assertMatch(await home.text(), /<title>strata<\/title>/);
      const lib = await fetch(`${page}/assets/uplot.js`);
      assertMatch(await lib.text(), /uPlot/);
    } finally {
      aged.kill("SIGINT");
    }
    const agedOut = await aged.output();
    assertEquals(agedOut.code, 0, dec.decode(agedOut.stderr));
    const ar = await strata("restore", "-config", "age.yml", "-o", "aged.db", join(run, "app.db"));
    assertEquals(ar.code, 0, ar.stderr);
    assertEquals(
      await sql("aged.db", "SELECT count(*), sum(length(v)), group_concat(v) FROM t"),
      want,
    );

    const demo = await strata("demo");
    assertEquals(demo.code, 0, demo.stderr);
    assertMatch(demo.stdout, /demo passed/);

    // the network clients load from the single file too: S3 (fauxqs) and SFTP (sshd)
    const s3 = await startS3Server();
    const sshd = await startSshd();
    try {
      const bucket = await s3.createBucket();
      const sftp = `      - url: sftp://${sshd.user}@${sshd.host}:${sshd.port}${sshd.dataDir}/app
        key-path: ${sshd.userKeyPath}
        host-key: ${sshd.hostKey}\n`;
      await Deno.writeTextFile(
        join(run, "remote.yml"),
        `dbs:\n  - path: ${join(run, "app.db")}\n    replicas:\n` +
          `      - url: s3://${bucket}/app?endpoint=${s3.endpoint}\n${sftp}`,
      );
      const remote = replicate(["-config", "remote.yml"]);
      try {
        // both replicas hold the database before the app writes again (however slow the start)
        await waitFor(async () => (await ltxFiles(join(sshd.dataDir, "app"))) > 0, 60_000);
        await waitFor(async () => (await s3Files(s3.endpoint, bucket)) > 0, 60_000);
        await sql("app.db", "INSERT INTO t (v) VALUES ('remote')");
      } finally {
        remote.kill("SIGINT");
      }
      const rs = await remote.output();
      assertEquals(rs.code, 0, dec.decode(rs.stderr));
      // every replica of app.db restores and equals the live database
      const vr = await strata("verify", "-config", "remote.yml", join(run, "app.db"));
      assertEquals(vr.code, 0, vr.stdout + vr.stderr);
      assertMatch(vr.stdout, /s3/);
      assertMatch(vr.stdout, /sftp/);
    } finally {
      await sshd.stop();
      await s3.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * `restore -f`: while an app writes and `strata replicate` runs, a follower
 * keeps a copy up to date; the copy reaches the app's state at each mark, is
 * whole (integrity ok) whenever a reader looks, and the follower stops
 * cleanly on SIGINT.
 */

import { join } from "node:path";
import { PROJECT_ROOT } from "./helpers/vectors.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, fileChecksum, readMarks, Replicating, runWriter } from "./helpers/strata.ts";
import { exists } from "../src/fsutil.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { planFollow } from "../src/restore/follow.ts";
import type { ReplicaFile } from "../src/storage/mod.ts";

Deno.test("follow plan: from the copy's TXID, the files reaching furthest, compacted ones covering it included", () => {
  const f = (level: number, min: number, max: number, size = 10): ReplicaFile => ({
    level,
    minTXID: BigInt(min),
    maxTXID: BigInt(max),
    size,
    createdAt: new Date(0),
  });
  const files = [
    f(0, 5, 5),
    f(0, 6, 6),
    f(0, 7, 7),
    f(1, 1, 6, 50),
    f(1, 5, 6, 30),
    f(9, 1, 4, 100),
  ];
  const names = (txid: number) =>
    planFollow(files, BigInt(txid)).map((x) => `${x.level}:${x.minTXID}-${x.maxTXID}`);
  assertEquals(names(5), ["0:6-6", "0:7-7"]); // same reach: the smaller file
  assertEquals(names(4), ["1:5-6", "0:7-7"]);
  assertEquals(names(3), ["1:1-6", "0:7-7"]); // a compacted file covering what is applied
  assertEquals(names(7), []);
  assertEquals(names(9), []); // the replica is behind the copy: nothing to apply
});

async function waitForDigest(path: string, digest: string, label: string): Promise<number> {
  const end = Date.now() + 60_000;
  let looks = 0;
  while (true) {
    if (await exists(path)) {
      const d = await digestOf(path);
      looks++;
      // a reader of the copy never sees a half-applied update
      assertEquals(d.integrity, "ok", `copy at look ${looks} while waiting for ${label}`);
      if (d.digest === digest) return looks;
    }
    if (Date.now() > end) throw new Error(`the copy never reached ${label}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function startFollower(url: string, copy: string, env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(PROJECT_ROOT, "main.ts"),
      "restore",
      "-f",
      "-follow-interval",
      "200ms",
      "-o",
      copy,
      url,
    ],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Replicates `db` to `url` while the app writes in phases; a follower keeps
 * `copy` up to date. Returns the follower's stderr.
 */
async function followScenario(
  dir: string,
  url: string,
  env: Record<string, string>,
  signal: Deno.Signal,
): Promise<string> {
  const db = join(dir, "app.db");
  const marksPath = join(dir, "marks.jsonl");
  const copy = join(dir, "copy.db");
  let follower: Deno.ChildProcess | null = null;
  let rep: Replicating | null = null;
  try {
    await runWriter(db, "more", 31, marksPath);
    rep = new Replicating([db, url], env);
    await rep.waitForLog();
    follower = startFollower(url, copy, env);
    const output = follower.output();
    let marks = await readMarks(marksPath);
    await waitForDigest(copy, marks[0].digest, marks[0].label);
    for (const [phase, seed] of [["more", 32], ["main", 33], ["more", 34]] as const) {
      await runWriter(db, phase, seed, marksPath);
      marks = await readMarks(marksPath);
      const last = marks[marks.length - 1];
      await waitForDigest(copy, last.digest, `${phase}/${last.label}`);
    }
    const stopped = await rep.stop();
    rep = null;
    assertEquals(stopped.code, 0, stopped.stderr);
    assertMatch(stopped.stderr, /upload snapshot app\.db 100% .* in \d+s/); // snapshot upload progress
    // strata stopped and checkpointed: the copy is the source database, page for page
    const end = Date.now() + 30_000;
    while ((await fileChecksum(copy)) !== (await fileChecksum(db))) {
      assert(Date.now() < end, "the copy's checksum never reached the source's");
      await new Promise((r) => setTimeout(r, 200));
    }

    follower.kill(signal);
    const out = await output;
    follower = null;
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    assertMatch(stderr, /follow: applied/);
    assertMatch(stderr, /follow mode stopped/);
    assert(!(await exists(`${copy}.follow-tmp`)), "follow tmp file left behind");
    assertEquals((await digestOf(copy)).digest, marks[marks.length - 1].digest);
    return stderr;
  } finally {
    if (follower) {
      follower.kill("SIGKILL");
      await follower.status;
    }
    if (rep) await rep.stop();
  }
}

Deno.test("restore -f follows a file replica while an app writes; stops cleanly on SIGINT; resumes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-follow-" });
  try {
    const url = `file://${join(dir, "replica")}`;
    await followScenario(dir, url, {}, "SIGINT");

    // a follower started again on its own copy resumes where it stopped; a copy that no longer
    // matches its record is restored afresh
    const db = join(dir, "app.db");
    const copy = join(dir, "copy.db");
    const marksPath = join(dir, "marks.jsonl");
    const rep = new Replicating([db, url]);
    try {
      for (const [round, seed] of [["resume", 35], ["changed", 36]] as const) {
        if (round === "changed") {
          // the header's user_version: still a sound database, but not the replica's bytes
          const f = await Deno.open(copy, { write: true });
          await f.seek(60, Deno.SeekMode.Start);
          await f.write(new Uint8Array([0, 0, 0, 42]));
          f.close();
        }
        const follower = startFollower(url, copy, {});
        const output = follower.output();
        try {
          await runWriter(db, "more", seed, marksPath);
          const marks = await readMarks(marksPath);
          await waitForDigest(copy, marks[marks.length - 1].digest, `${round}: the new mark`);
        } finally {
          follower.kill("SIGINT");
        }
        const out = await output;
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assertEquals(out.code, 0, text);
        if (round === "resume") {
          assertMatch(text, /resuming follow of .*copy\.db at TXID [0-9a-f]{16}/);
        } else {
          assertMatch(text, /does not match its record; restoring it afresh/);
          assertMatch(text, /restored .*copy\.db to TXID/);
        }
      }
    } finally {
      await rep.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore -f follows an S3 replica through the restore cache; stops cleanly on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-follow-s3-" });
  const s3 = await startS3Server();
  try {
    const bucket = await s3.createBucket();
    const cache = join(dir, "cache");
    await followScenario(
      dir,
      `s3://${bucket}/app?endpoint=${s3.endpoint}`,
      { ...TEST_CREDENTIALS, STRATA_CACHE_DIR: cache },
      "SIGTERM",
    );
    // what the follower read entered the cache once verified; nothing half-written is left
    const files: string[] = [];
    const walk = async (d: string) => {
      for await (const e of Deno.readDir(d)) {
        if (e.isDirectory) await walk(join(d, e.name));
        else files.push(e.name);
      }
    };
    await walk(cache);
    assert(files.some((f) => f.endsWith(".ltx")), `no cached files: ${files.join(" ")}`);
    assert(!files.some((f) => f.endsWith(".tmp")), `temporary files left: ${files.join(" ")}`);
  } finally {
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Restoring replicas written by the real Litestream v0.3.13 binary (npm
 * @flydotio/litestream-linux-x64@1.0.1) while a Python app writes: file and S3
 * (fauxqs) replicas, latest and by timestamp, snapshot-only, several WAL
 * indexes with several segments each, and damaged segments.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, type Mark, readMarks, runWriter, strata } from "./helpers/strata.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { ensureLitestream } from "./helpers/litestream.ts";
import { exists } from "../src/fsutil.ts";

/** `litestream replicate -config FILE` in the background; `stop()` sends SIGINT and waits. */
async function startLitestream(config: string, env: Record<string, string> = {}) {
  const bin = await ensureLitestream();
  const child = new Deno.Command(bin, {
    args: ["replicate", "-config", config],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.output();
  return {
    async stop(): Promise<string> {
      try {
        child.kill("SIGINT");
      } catch { /* exited */ }
      const r = await out;
      return new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
    },
  };
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the replica restores to the app's last recorded state (Litestream still running). */
async function waitForFinalState(
  url: string,
  probe: string,
  marksPath: string,
  env: Record<string, string> = {},
): Promise<void> {
  const marks = await readMarks(marksPath);
  const want = marks[marks.length - 1].digest;
  await waitFor("the app's final state in the replica", async () => {
    await Deno.remove(probe).catch(() => {});
    const r = await strata(["restore", "-integrity-check", "none", "-o", probe, url], { env });
    return r.code === 0 && (await digestOf(probe)).digest === want;
  }, 120_000);
  await Deno.remove(probe).catch(() => {});
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await listTree(p));
    else out.push(p);
  }
  return out.sort();
}

async function copyTree(src: string, dst: string): Promise<void> {
  await Deno.mkdir(dst, { recursive: true });
  for await (const e of Deno.readDir(src)) {
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory) await copyTree(s, d);
    else {
      await Deno.copyFile(s, d);
      const st = await Deno.stat(s);
      await Deno.utime(d, st.atime ?? new Date(), st.mtime!); // times are the v0.3 timestamps
    }
  }
}

/**
 * Restores at every mark's time (and latest) and checks the rows against what the app recorded.
 * A failure also says what Litestream v0.3.13's own restore makes of the same time and what its
 * log said (a new generation while the app wrote is where a replica's timeline gets subtle).
 */
async function restoreMarks(
  url: string,
  dir: string,
  marks: Mark[],
  opts: { env?: Record<string, string>; litestreamLog?: string } = {},
): Promise<void> {
  for (const m of marks) {
    const p = join(dir, `at-${m.label}.db`);
    // the writer is idle from 600 ms before a mark's time to 600 ms after it: restoring at
    // +350 ms leaves Litestream time to ship the mark's last commits on a busy machine, and no
    // later commit can be in a segment created by then
    const at = new Date(m.time + 350).toISOString();
    const r = await strata(["restore", "-o", p, "-timestamp", at, url], { env: opts.env });
    const d = r.code === 0 ? await digestOf(p) : null;
    if (r.code !== 0 || d?.digest !== m.digest || d?.integrity !== "ok") {
      const theirs = await litestreamRestoreDigest(
        url,
        join(dir, `theirs-${m.label}.db`),
        at,
        opts,
      );
      const generations = (opts.litestreamLog ?? "").split("\n").filter((l) =>
        /new generation|snapshot/.test(l)
      );
      throw new Error(
        `restore at ${m.label} (${at}): strata exit ${r.code}, ${
          d ? `digest ${d.digest === m.digest ? "equal" : "different"}, ${d.integrity}` : r.stderr
        }; Litestream's own restore at that time: ${theirs}\nLitestream log:\n${
          generations.join("\n")
        }`,
      );
    }
    assertMatch(r.stdout, /from Litestream v0\.3 generation [0-9a-f]{16}/);
  }
}

/** What `litestream restore -timestamp` makes of a time, in words (for failure messages). */
async function litestreamRestoreDigest(
  url: string,
  out: string,
  at: string,
  opts: { env?: Record<string, string> },
): Promise<string> {
  if (!url.startsWith("file://")) return "not tried (file replicas only)";
  const replica = url.slice("file://".length);
  const lr = await new Deno.Command(await ensureLitestream(), {
    args: ["restore", "-o", out, "-timestamp", at, replica],
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (lr.code !== 0) return `exit ${lr.code}: ${new TextDecoder().decode(lr.stderr).trim()}`;
  const d = await digestOf(out);
  return `digest ${d.digest}, ${d.integrity}`;
}

Deno.test("litestream v0.3 file replica: latest (byte-identical to litestream's own restore), timestamps, snapshot-only, damaged segments", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-v03-" });
  try {
    const db = join(dir, "app.db");
    const replica = join(dir, "replica");
    const marksPath = join(dir, "marks.jsonl");
    await runWriter(db, "more", 11, marksPath); // exists (and checkpointed) before litestream starts
    const config = join(dir, "litestream.yml");
    await Deno.writeTextFile(
      config,
      `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: file
        path: ${replica}
        sync-interval: 100ms
`,
    );
    const ls = await startLitestream(config);
    let lsLog = "";
    try {
      await waitFor("the first snapshot", async () => {
        if (!(await exists(join(replica, "generations")))) return false;
        return (await listTree(replica)).some((p) => p.endsWith(".snapshot.lz4"));
      });
      await runWriter(db, "main", 12, marksPath);
      await waitForFinalState(`file://${replica}`, join(dir, "probe.db"), marksPath);
    } finally {
      lsLog = await ls.stop();
    }
    const marks = await readMarks(marksPath);
    const files = await listTree(replica);
    const segs = files.filter((p) => p.endsWith(".wal.lz4")).map((p) => p.split("/").pop()!);
    const indexes = new Set(segs.map((s) => s.slice(0, 8)));
    assert(indexes.size >= 2, `only ${indexes.size} WAL index(es): ${segs.join(" ")}\n${lsLog}`);
    assert(
      [...indexes].some((i) => segs.filter((s) => s.startsWith(i)).length >= 2),
      `no WAL index with several segments: ${segs.join(" ")}`,
    );
    const url = `file://${replica}`;

    // latest: the app's final rows, and the very bytes Litestream v0.3.13 restores
    const latest = join(dir, "latest.db");
    const r = await strata(["restore", "-o", latest, url]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stderr, /restore latest\.db 100% .* in \d+s/); // plain progress line (not a terminal)
    assertEquals((await digestOf(latest)).digest, marks[marks.length - 1].digest);
    const theirs = join(dir, "litestream.db");
    const lr = await new Deno.Command(await ensureLitestream(), {
      args: ["restore", "-o", theirs, url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(lr.code, 0, new TextDecoder().decode(lr.stderr));
    assertEquals(await Deno.readFile(latest), await Deno.readFile(theirs));

    // every mark written while litestream ran, by timestamp
    await restoreMarks(url, dir, marks.slice(1), { litestreamLog: lsLog });

    // -txid does not apply; -dry-run lists the files
    const tx = await strata(["restore", "-o", join(dir, "tx.db"), "-txid", "5", url]);
    assertEquals(tx.code, 2, tx.stderr);
    assertMatch(tx.stderr, /Litestream v0\.3 replica.*-txid does not apply/);
    const dry = await strata(["restore", "-dry-run", "-o", join(dir, "dry.db"), url]);
    assertEquals(dry.code, 0, dry.stderr);
    assertMatch(dry.stdout, /snapshot 00000000 .*\n(.*\n)*\s+wal 00000001 offset 00000000/);

    // snapshot only: the database as it was when litestream started
    const snapOnly = join(dir, "snap-only");
    await copyTree(replica, snapOnly);
    for (const p of await listTree(snapOnly)) if (p.endsWith(".wal.lz4")) await Deno.remove(p);
    const so = join(dir, "snap-only.db");
    const sr = await strata(["restore", "-o", so, `file://${snapOnly}`]);
    assertEquals(sr.code, 0, sr.stderr);
    assertMatch(sr.stdout, /no WAL/);
    assertEquals((await digestOf(so)).digest, marks[0].digest);

    // a truncated segment, then a corrupted one: clear errors naming the file, nothing written
    const largest = (await Promise.all(
      files.filter((p) => p.endsWith(".wal.lz4")).map(async (p) => ({
        p,
        size: (await Deno.stat(p)).size,
      })),
    )).sort((a, b) => b.size - a.size)[0];
    const rel = largest.p.slice(replica.length);
    for (const damage of ["truncate", "corrupt"] as const) {
      const bad = join(dir, `bad-${damage}`);
      await copyTree(replica, bad);
      const bytes = await Deno.readFile(bad + rel);
      if (damage === "truncate") {
        await Deno.writeFile(bad + rel, bytes.subarray(0, bytes.length >> 1));
      } else {
        for (let i = 0; i < 16; i++) bytes[(bytes.length >> 1) + i] ^= 0x5a;
        await Deno.writeFile(bad + rel, bytes);
      }
      const out = join(dir, `bad-${damage}.db`);
      const br = await strata(["restore", "-o", out, `file://${bad}`]);
      assertEquals(br.code, 1, `${damage}: ${br.stdout}${br.stderr}`);
      assert(br.stderr.includes(rel.split("/").pop()!), `${damage}: ${br.stderr}`);
      assertMatch(br.stderr, /corrupt or truncated|truncated segment|fails its checksum/);
      assert(!(await exists(out)), `${damage}: ${out} exists after a failed restore`);
      for (const e of Deno.readDirSync(dir)) {
        assert(!e.name.endsWith(".tmp"), `${damage}: tmp file ${e.name} left behind`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("litestream v0.3 S3 replica (fauxqs): latest and timestamps", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-v03-s3-" });
  const s3 = await startS3Server();
  try {
    const bucket = await s3.createBucket();
    const db = join(dir, "app.db");
    const marksPath = join(dir, "marks.jsonl");
    await runWriter(db, "more", 21, marksPath);
    const config = join(dir, "litestream.yml");
    await Deno.writeTextFile(
      config,
      `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: s3
        bucket: ${bucket}
        path: legacy/app
        endpoint: ${s3.endpoint}
        region: us-east-1
        force-path-style: true
        sync-interval: 100ms
`,
    );
    const ls = await startLitestream(config, TEST_CREDENTIALS);
    let lsLog = "";
    const url = `s3://${bucket}/legacy/app?endpoint=${s3.endpoint}`;
    try {
      await waitFor("the first snapshot", async () => {
        const r = await strata(["restore", "-dry-run", "-o", join(dir, "dry.db"), url], {
          env: TEST_CREDENTIALS,
        });
        return r.code === 0;
      }, 60_000);
      await runWriter(db, "main", 22, marksPath);
      await waitForFinalState(url, join(dir, "probe.db"), marksPath, TEST_CREDENTIALS);
    } finally {
      lsLog = await ls.stop();
    }
    assertMatch(lsLog, /wal segment written/);
    const marks = await readMarks(marksPath);
    const latest = join(dir, "latest.db");
    const r = await strata(["restore", "-o", latest, url], { env: TEST_CREDENTIALS });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /WAL through 0000000[1-9a-f]/);
    const d = await digestOf(latest);
    assertEquals(d.digest, marks[marks.length - 1].digest);
    assertEquals(d.integrity, "ok");
    await restoreMarks(url, dir, marks.slice(1), { env: TEST_CREDENTIALS, litestreamLog: lsLog });
  } finally {
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Replicas that fail together, and local state left overlapping, recover by
 * themselves: both replicas catch up and restore exactly. strata and the app
 * run as separate processes.
 */

import { join } from "node:path";
import { defaultMetaPath } from "../src/capture/mod.ts";
import { formatLtxFileName, parseLtxFileName } from "../src/ltx/mod.ts";
import { mergeIntoFile } from "../src/replicate/local_merge.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { assert, assertMatch } from "./helpers/assert.ts";
import { strata } from "./helpers/strata.ts";
import { App, createAppDb, LiveStrata, waitFor, waitForReplicaEqual } from "./helpers/live.ts";

function config(db: string, replicas: string[], maxPending: number): string {
  return `dbs:
  - path: ${db}
    monitor-interval: 20ms
    max-pending-files: ${maxPending}
    replicas:
${
    replicas.map((r) => `      - type: file\n        path: ${r}\n        sync-interval: 50ms\n`)
      .join("")
  }`;
}

/** Takes replica directory `dir` away (a file in its place: every write fails). */
async function takeDown(dir: string): Promise<void> {
  await Deno.rename(dir, `${dir}.away`);
  await Deno.writeTextFile(dir, "not a directory");
}

async function bringUp(dir: string): Promise<void> {
  await Deno.remove(dir);
  await Deno.rename(`${dir}.away`, dir);
}

async function localFiles(metaPath: string): Promise<{ name: string; min: bigint; max: bigint }[]> {
  const out = [];
  for await (const e of Deno.readDir(join(metaPath, "ltx", "0"))) {
    const r = e.isFile ? parseLtxFileName(e.name) : null;
    if (r) out.push({ name: e.name, min: r.minTXID, max: r.maxTXID });
  }
  return out.sort((a, b) => (a.min < b.min ? -1 : a.min > b.min ? 1 : 0));
}

Deno.test("two replicas down at once while many local files are merged: both catch up and restore exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-recovery-" });
  const db = join(dir, "app.db");
  const reps = [join(dir, "a"), join(dir, "b")];
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(cfg, config(db, reps, 4));
  const app = new App(db, 0.005);
  const strata = new LiveStrata(["-config", cfg]);
  let stopped = false;
  try {
    for (const r of reps) {
      await waitFor(
        `replica ${r}`,
        async () => (await Deno.stat(join(r, "ltx", "0")).then(() => true, () => false)),
      );
    }
    for (const r of reps) await takeDown(r);
    await waitFor("local files to be merged", () => /merged local files/.test(strata.log));
    await new Promise((r) => setTimeout(r, 3000)); // more merges while both are down
    for (const r of reps) await bringUp(r);
    await app.stop();
    for (const r of reps) await waitForReplicaEqual(new FileReplicaClient(r), db, dir);
    const { code, log } = await strata.stop();
    stopped = true;
    assert(code === 0, `strata exited ${code}:\n${log.slice(-3000)}`);
    assert(!/does not continue replica TXID/.test(log), "no replica was stuck");
  } catch (e) {
    if (!stopped) {
      console.error(strata.log.slice(-5000));
      if (Deno.env.get("STRATA_TEST_DEBUG")) {
        await Deno.writeTextFile("/tmp/h4-last-strata.log", strata.log);
      }
    }
    throw e;
  } finally {
    await app.stop();
    if (!stopped) await strata.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("overlapping local files (a merged file beside some of its inputs) are recovered on restart: both replicas catch up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-overlap-" });
  const db = join(dir, "app.db");
  const reps = [join(dir, "a"), join(dir, "b")];
  const meta = defaultMetaPath(db);
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(cfg, config(db, reps, 1000));
  const app = new App(db, 0.01);
  let strata = new LiveStrata(["-config", cfg]);
  let stopped = false;
  try {
    for (const r of reps) {
      await waitFor(
        `replica ${r}`,
        async () => (await Deno.stat(join(r, "ltx", "0")).then(() => true, () => false)),
      );
    }
    for (const r of reps) await takeDown(r);
    await waitFor("pending local files", async () => (await localFiles(meta)).length >= 12);
    await app.stop();
    await strata.stop(); // exits non-zero: the replicas lack commits
    stopped = true;

    // what two concurrent merges used to leave: a-b and a-c, the inputs gone
    const files = await localFiles(meta);
    const ltx = join(meta, "ltx", "0");
    const run = files.slice(-7, -1); // pending in both replicas; never the newest file
    for (let i = 1; i < run.length; i++) {
      assert(run[i].min === run[i - 1].max + 1n, "a contiguous run");
    }
    for (const k of [4, 6]) {
      const part = run.slice(0, k);
      const name = formatLtxFileName(part[0].min, part[k - 1].max);
      await mergeIntoFile(part.map((f) => join(ltx, f.name)), join(ltx, `${name}.crafted`));
    }
    for (const f of run) await Deno.remove(join(ltx, f.name));
    for (const k of [4, 6]) {
      const name = formatLtxFileName(run[0].min, run[k - 1].max);
      await Deno.rename(join(ltx, `${name}.crafted`), join(ltx, name));
    }

    for (const r of reps) await bringUp(r);
    strata = new LiveStrata(["-config", cfg]);
    stopped = false;
    for (const r of reps) await waitForReplicaEqual(new FileReplicaClient(r), db, dir);
    const { code, log } = await strata.stop();
    stopped = true;
    assert(code === 0, `strata exited ${code}:\n${log.slice(-3000)}`);
    assert(!/does not continue replica TXID/.test(log), "no replica was stuck");
  } catch (e) {
    if (!stopped) {
      console.error(strata.log.slice(-5000));
      if (Deno.env.get("STRATA_TEST_DEBUG")) {
        await Deno.writeTextFile("/tmp/h4-last-strata.log", strata.log);
      }
    }
    throw e;
  } finally {
    await app.stop();
    if (!stopped) await strata.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify -config fails a replica that stopped receiving commits (behind more than -max-lag), naming it", async () => {
  if (Deno.uid() !== 0) {
    console.log("skipped: needs root (chattr) to make a directory read-only for root");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "strata-behind-" });
  const db = join(dir, "app.db");
  const reps = [join(dir, "a"), join(dir, "b")];
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(cfg, config(db, reps, 128));
  const app = new App(db, 0.02);
  const proc = new LiveStrata(["-config", cfg]);
  const stuck = join(reps[1], "ltx", "0");
  const chattr = (flag: string) =>
    new Deno.Command("chattr", { args: [flag, stuck], stdout: "null", stderr: "null" }).output();
  try {
    for (const r of reps) {
      await waitFor(
        `replica ${r}`,
        () => Deno.stat(join(r, "ltx", "0")).then(() => true, () => false),
      );
    }
    assert((await chattr("+i")).code === 0, "chattr +i");
    await waitFor("the failure in the log", () => /sync failed/.test(proc.log));
    // the oldest change the replica lacks gets older than -max-lag: verify says so
    let out = { code: 0, stdout: "", stderr: "" };
    await waitFor("verify to fail the stuck replica", async () => {
      out = await strata(["verify", "-config", cfg, "-max-lag", "1s", "-no-progress", db]);
      return out.code !== 0;
    }, 60_000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${out.stdout}${out.stderr}`);
    });
    assertMatch(
      out.stdout,
      new RegExp(`${reps[1]}\\s+FAILED\\s+the replica is behind: it lacks TXIDs`),
    );
    assertMatch(out.stdout, new RegExp(`${reps[0]}\\s+OK`));
  } finally {
    await chattr("-i");
    await app.stop();
    await proc.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

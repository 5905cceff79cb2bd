/**
 * A point-in-time restore 23 h after the snapshot, at the default levels
 * (issue 17), against a restore of the snapshot alone. The replica is built
 * by strata's own capture and merge code on a simulated clock: an app updates
 * random rows of a text database (PITR_BENCH_UPDATES per hour, one
 * transaction each), a capture every 30 s of simulated time (an L1 file),
 * merged by ten into L2 (5 min) and by twelve into L3 (1 h): the files a
 * replica holds after 23 h with no newer snapshot (L9 + 23 × L3). Both
 * restores run through the CLI; the latest must equal the database's bytes.
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Monitor } from "../src/capture/mod.ts";
import { parseLtxFileName } from "../src/ltx/mod.ts";
import { mergeIntoFile } from "../src/replicate/local_merge.ts";
import { readLocalEnds } from "../src/replicate/positions.ts";
import { FileReplicaClient, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import { makeTextDatabase } from "./sample_db.ts";
import { machine, median, STRATA_RUN_ARGS, writeBenchSection } from "./report.ts";

const MIB = Number(Deno.env.get("PITR_BENCH_MIB") ?? 1024);
const HOURS = Number(Deno.env.get("PITR_BENCH_HOURS") ?? 23);
const UPDATES_PER_HOUR = Number(Deno.env.get("PITR_BENCH_UPDATES") ?? 3600);
const ROUNDS = Number(Deno.env.get("PITR_BENCH_ROUNDS") ?? 3);
const WINDOW_MS = 30_000;

/** Writes the local file `path` into the replica at `level`, stamped as its header says. */
async function upload(client: FileReplicaClient, level: number, path: string): Promise<number> {
  const { header } = await readLocalEnds(path);
  const f = await Deno.open(path);
  const size = (await f.stat()).size;
  await client.writeFile(
    level,
    header.minTXID,
    header.maxTXID,
    f.readable,
    new Date(Number(header.timestamp)),
  );
  return size;
}

async function restore(rep: string, out: string, args: string[]): Promise<number> {
  await Deno.remove(out).catch(() => {});
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [...STRATA_RUN_ARGS, "restore", "-no-progress", "-o", out, ...args, `file://${rep}`],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`restore failed: ${new TextDecoder().decode(r.stderr)}`);
  return (performance.now() - t0) / 1000;
}

async function main() {
  const dir = await Deno.makeTempDir({ prefix: "strata-pitr-bench-" });
  try {
    const db = join(dir, "app.db");
    makeTextDatabase(db, MIB);
    const app = new DatabaseSync(db);
    app.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    const rows = Number((app.prepare("SELECT max(id) AS n FROM rows").get() as { n: number }).n);
    const update = app.prepare("UPDATE rows SET note = ?, n = n + 1 WHERE id = ?");
    let now = Date.parse("2026-01-01T00:00:00Z");
    const monitor = new Monitor({ dbPath: db, clock: () => now });
    await monitor.open();
    const l0 = async () => {
      const out: string[] = [];
      for await (const e of Deno.readDir(monitor.ltxDir)) {
        if (parseLtxFileName(e.name)) out.push(join(monitor.ltxDir, e.name));
      }
      return out.sort();
    };
    const [snapshot] = await l0();
    const rep = join(dir, "replica");
    const client = new FileReplicaClient(rep);
    const snapshotBytes = await upload(client, SNAPSHOT_LEVEL, snapshot);
    await Deno.remove(snapshot);
    console.log(`database: ${MIB} MiB, ${rows} rows; ${HOURS} h of ${UPDATES_PER_HOUR} updates/h…`);
    let seed = 17;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const perWindow = UPDATES_PER_HOUR * WINDOW_MS / 3_600_000;
    let owed = 0;
    let l3Bytes = 0;
    for (let h = 0; h < HOURS; h++) {
      const l2: string[] = [];
      for (let m = 0; m < 12; m++) {
        for (let w = 0; w < 10; w++) {
          owed += perWindow;
          for (; owed >= 1; owed--) {
            update.run(
              `updated ${now} `.repeat(1 + Math.floor(rand() * 8)),
              1 + Math.floor(rand() * rows),
            );
          }
          now += WINDOW_MS;
          await monitor.capture();
        }
        const l1 = await l0();
        const out = join(dir, `l2-${h}-${m}.ltx`);
        await mergeIntoFile(l1, out);
        for (const p of l1) await Deno.remove(p);
        l2.push(out);
      }
      const out = join(dir, `l3-${h}.ltx`);
      await mergeIntoFile(l2, out);
      for (const p of l2) await Deno.remove(p);
      l3Bytes += await upload(client, 3, out);
      await Deno.remove(out);
    }
    await monitor.close();
    app.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    app.close();

    const snapOut = join(dir, "snapshot.db");
    const latestOut = join(dir, "latest.db");
    const snapTimes: number[] = [];
    const latestTimes: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      snapTimes.push(await restore(rep, snapOut, ["-txid", "1"]));
      latestTimes.push(await restore(rep, latestOut, []));
    }
    const same = (await new Deno.Command("cmp", { args: ["-s", db, latestOut] }).output()).code ===
      0;
    if (!same) throw new Error("the latest restore differs from the database");
    const s = median(snapTimes);
    const l = median(latestTimes);
    const mb = (n: number) => (n / 1e6).toFixed(0);
    const date = new Date().toISOString().slice(0, 10);
    const text = `## ${date} — point-in-time restore ${HOURS} h after the snapshot (issue 17)

Point-in-time restore ${HOURS} h after the snapshot (\`deno task bench\`, bench/pitr_bench.ts;
${machine()}). A ${MIB} MiB text database; an app updates ${UPDATES_PER_HOUR} random rows per hour,
one transaction each; strata's capture and merge build the replica a default-level replica holds
after ${HOURS} h with no newer snapshot (L9 + ${HOURS} hourly L3 files), on a simulated clock. Restores
from the file replica through the CLI with quick_check, medians of ${ROUNDS}; the latest equals the
database byte for byte.

| restore | files | bytes read | wall (median) |
| --- | --- | --- | --- |
| the snapshot alone (\`-txid 1\`) | 1 | ${mb(snapshotBytes)} MB | ${s.toFixed(2)} s |
| ${HOURS} h later (latest) | ${1 + HOURS} | ${mb(snapshotBytes + l3Bytes)} MB | ${
      l.toFixed(2)
    } s (${(l / s).toFixed(2)}×) |
`;
    console.log(text);
    await writeBenchSection("pitr", text);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await main();

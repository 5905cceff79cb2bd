/**
 * Branches of a 1 GiB database's replica (issue 9 targets):
 *
 * - a source replica with history: `strata replicate` (its own process, L1
 *   every 2 s, L2 every 10 s) of a 1 GiB database while an app (Python's
 *   sqlite3, its own process) commits 40 rounds of updates, 250 ms apart;
 * - `strata clone -timestamp T` at a past round: wall time of the command
 *   (Deno start included) and the time and bytes the clone itself reports;
 * - the first restore of the clone beside a point-in-time restore of the
 *   source at the same T (`-integrity-check none`, fsync included), twice
 *   each, alternating;
 * - the restore cache: a restore of one clone, then of a clone a few rounds
 *   later, through a cache (in process, on a replica counted as remote):
 *   bytes read from the replica by each.
 *
 * Results go to docs/benchmarks.md between the clone-bench markers.
 * CLONE_BENCH_MIB sizes the database (default 1024).
 */

import { join } from "node:path";
import { makeTextDatabase } from "./sample_db.ts";
import { machine, STRATA_RUN_ARGS, writeBenchSection } from "./report.ts";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { CountingClient } from "../tests/helpers/counting_client.ts";
import { CachingReplicaClient, RestoreCache, restoreTargetCached } from "../src/restore/mod.ts";
import { BranchReplicaClient, cloneReplica } from "../src/branch/mod.ts";

const MIB = Number(Deno.env.get("CLONE_BENCH_MIB") ?? 1024);
const bench = join(PROJECT_ROOT, ".tmp", "bench");
const dir = join(bench, "clone");
const dec = new TextDecoder();

async function run(args: string[]): Promise<{ out: string; seconds: number }> {
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [...STRATA_RUN_ARGS, ...args],
    env: { STRATA_CACHE_SIZE: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`strata ${args.join(" ")}: ${dec.decode(r.stderr)}`);
  return { out: dec.decode(r.stdout), seconds };
}

const APP = `
import json, random, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("PRAGMA journal_mode=WAL")
n = con.execute("SELECT max(id) FROM rows").fetchone()[0]
rnd = random.Random(7)
for i in range(40):
    con.execute("BEGIN")
    for _ in range(20):
        con.execute("UPDATE rows SET n = n + 1, note = note || 'x' WHERE id = ?", (rnd.randrange(1, n),))
    con.execute("INSERT INTO rows (name, email, note, n) VALUES (?, ?, ?, ?)", ("r%d" % i, "e", "round", i))
    con.execute("COMMIT")
    time.sleep(0.05)
    print(json.dumps({"round": i, "time": int(time.time() * 1000)}), flush=True)
    time.sleep(0.2)
`;

async function main() {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const base = join(bench, `text-${MIB}m.db`);
  console.log(`database ${base}…`);
  makeTextDatabase(base, MIB);
  const db = join(dir, "app.db");
  await Deno.copyFile(base, db);
  const src = join(dir, "source");
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `levels:\n  - interval: 2s\n  - interval: 10s\ndbs:\n  - path: ${db}\n    replicas:\n      - url: file://${src}\n        sync-interval: 200ms\n`,
  );
  console.log("replicating (first snapshot of the whole database)…");
  const rep = new Deno.Command(Deno.execPath(), {
    args: [...STRATA_RUN_ARGS, "replicate", "-config", cfg],
    env: { LOG_LEVEL: "warn" },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  for (;;) {
    const first = await Promise.all(
      ["0", "9"].map((l) => Array.fromAsync(Deno.readDir(join(src, "ltx", l))).catch(() => [])),
    );
    if (first.flat().some((e) => e.name.endsWith(".ltx"))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log("app writing…");
  const app = await new Deno.Command("python3", { args: ["-c", APP, db], stdout: "piped" })
    .output();
  if (!app.success) throw new Error("app failed");
  const rounds = dec.decode(app.stdout).trim().split("\n").map((l) => JSON.parse(l));
  await new Promise((r) => setTimeout(r, 12_000)); // an L2 pass over the history
  rep.kill("SIGINT");
  await rep.status;
  const files = await Promise.all(
    [0, 1, 2, 9].map((l) => new FileReplicaClient(src).listFiles(l)),
  );
  const counts = files.map((f) => f.length);

  const at = (i: number) => new Date(rounds[i].time).toISOString();
  console.log("clone…");
  const c = await run([
    "clone",
    "-json",
    "-timestamp",
    at(17),
    `file://${src}`,
    `file://${dir}/branch`,
  ]);
  const cj = JSON.parse(c.out);

  console.log("restores…");
  const restoreBranch: number[] = [];
  const restorePitr: number[] = [];
  let planBranch = "";
  let planPitr = "";
  for (let i = 0; i < 2; i++) {
    for (const p of ["b.db", "p.db"]) await Deno.remove(join(dir, p)).catch(() => {});
    const b = await run([
      "restore",
      "-integrity-check",
      "none",
      "-o",
      join(dir, "b.db"),
      `file://${dir}/branch`,
    ]);
    restoreBranch.push(b.seconds);
    planBranch = /(\d+ files)/.exec(b.out)?.[1] ?? "?";
    const p = await run([
      "restore",
      "-integrity-check",
      "none",
      "-timestamp",
      at(17),
      "-o",
      join(dir, "p.db"),
      `file://${src}`,
    ]);
    restorePitr.push(p.seconds);
    planPitr = /(\d+ files)/.exec(p.out)?.[1] ?? "?";
  }
  for (const p of ["b.db", "p.db"]) await Deno.remove(join(dir, p)).catch(() => {});

  console.log("cache…");
  const counting = new CountingClient(new FileReplicaClient(src));
  const cache = new RestoreCache(join(dir, "cache"), 8 * 1024 ** 3);
  const viaCache = new CachingReplicaClient(counting, cache);
  const cached: { bytes: number; seconds: number; files: number }[] = [];
  for (const [i, round] of [[1, 17], [2, 25]]) {
    const dest = new FileReplicaClient(join(dir, `cached-branch-${i}`));
    const clone = await cloneReplica({
      source: new FileReplicaClient(src),
      sourceUrl: `file://${src}`,
      dest,
      destUrl: `file://${dir}/cached-branch-${i}`,
      target: { timestamp: new Date(rounds[round].time) },
    });
    counting.bytes = 0;
    const t0 = performance.now();
    const r = await restoreTargetCached(
      new BranchReplicaClient(dest, () => viaCache),
      {},
      join(dir, `cached-${i}.db`),
      { integrityCheck: "none", cache },
    );
    cached.push({
      bytes: counting.bytes,
      seconds: (performance.now() - t0) / 1000,
      files: clone.manifest.files.length,
    });
    await Deno.remove(join(dir, `cached-${i}.db`));
    console.log(`  clone at round ${round}: TXID ${r.txid}, read ${counting.bytes} bytes`);
  }

  const fmt = (n: number, d = 2) => n.toFixed(d);
  const mib = (n: number) => `${fmt(n / 2 ** 20, 1)} MiB`;
  const date = new Date().toISOString().slice(0, 10);
  const md = `## ${date} — branches: clone, first restore of a clone, restore cache (issue 9)

Machine: ${machine()}. Other work was running on the machine. Run with \`deno run -A bench/clone_bench.ts\` (part of
\`deno task bench\`).
Source: a ${MIB} MiB database replicated by \`strata replicate\` to a local directory (L1 every 2 s,
L2 every 10 s) while an app in its own process committed 40 rounds of updates 250 ms apart; the
replica then held ${counts[0]} L0, ${counts[1]} L1 and ${counts[2]} L2 files and ${
    counts[3]
  } level-9 snapshots (the first full copy is L0 file 1-1). The clone point is the time of round 17.

| what | figure | target |
| --- | --- | --- |
| \`strata clone -timestamp T\` as a command, wall time incl. Deno start | ${
    fmt(c.seconds)
  } s | < 1 s |
| the clone itself (list, plan, 2 range reads, 2 writes), as it reports | ${cj.ms} ms | — |
| bytes uploaded by the clone (manifest + source registration) | ${cj.uploaded} B | < 64 KiB |
| source files the branch references | ${cj.files} (${mib(cj.bytes)}) | — |
| first restore of the clone, \`-integrity-check none\`, 2 runs | ${
    restoreBranch.map((s) => fmt(s)).join(" / ")
  } s (${planBranch}) | ≤ PITR restore |
| point-in-time restore of the source at T, same flags, 2 runs | ${
    restorePitr.map((s) => fmt(s)).join(" / ")
  } s (${planPitr}) | — |
| restore of a clone at round 17 through an empty cache: read from the replica | ${
    mib(cached[0].bytes)
  } in ${fmt(cached[0].seconds)} s | — |
| then a clone at round 25: read from the replica | ${mib(cached[1].bytes)} in ${
    fmt(cached[1].seconds)
  } s | only what is new |

The restore of a clone reads exactly the files a point-in-time restore of the source plans (the
manifest is that plan), so the two cost the same. The cache run is in process with the replica
counted as remote (\`file\` replicas are local already and are not cached).
`;
  console.log("\n" + md);
  await writeBenchSection("clone-bench", md);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

if (import.meta.main) await main();

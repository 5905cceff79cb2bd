/**
 * The weight of a replicator on the app it backs up (issue 16), side by side
 * in one run: no replicator, strata (from source) and Litestream v0.3.13, each
 * replicating a copy of the same database (BENCH_APP_DB_MB, default 118 MB) to
 * a local directory with sync-interval 1s and its default monitor interval.
 *
 * The app is bench/workload.py in its own process (Python's sqlite3, WAL,
 * synchronous=NORMAL, default wal_autocheckpoint). Workloads, rounds
 * interleaved by tool: 200 and 2,000 commits/s, as fast as it can, and 2,000
 * transactions of one 64 KiB row. Per run: the app's throughput and commit
 * latency (BEGIN to COMMIT returned) p50/p99/p99.9, and the replicator's
 * CPU-seconds over the workload and peak RSS. Then idle: the database left
 * alone, the replicator's CPU, context switches (all threads) and RSS, and the
 * bytes its replica holds against the database's size.
 *
 * BENCH_QUICK=1 shrinks everything (a smoke run; nothing is written to docs).
 */

import { join } from "node:path";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";
import {
  BenchReplicator,
  bytesUnder,
  cpuSeconds,
  ensureLitestream,
  machine,
  peakRssMiB,
  procStatus,
  run,
  switchesBetween,
  threadSwitches,
  writeBenchSection,
} from "./report.ts";

type Tool = "none" | "strata" | "litestream";
const TOOLS: Tool[] = ["none", "strata", "litestream"];

const QUICK = Deno.env.get("BENCH_QUICK") === "1";
const DB_MB = QUICK ? 8 : Number(Deno.env.get("BENCH_APP_DB_MB") ?? "118");
const SECONDS = QUICK ? 3 : Number(Deno.env.get("BENCH_APP_SECONDS") ?? "20");
const ROUNDS = QUICK ? 1 : Number(Deno.env.get("BENCH_APP_ROUNDS") ?? "2");
const BIG_TXNS = QUICK ? 200 : 2000;
const IDLE_SECONDS = QUICK ? 5 : 60;
const WORKLOAD = join(PROJECT_ROOT, "bench/workload.py");

interface Workload {
  name: string;
  args: string[];
}
const ALL_WORKLOADS: Workload[] = [
  { name: "200 commits/s", args: ["rate", "200", String(SECONDS)] },
  { name: "2,000 commits/s", args: ["rate", "2000", String(SECONDS)] },
  { name: "as fast as it can", args: ["rate", "0", String(SECONDS)] },
  { name: `${BIG_TXNS} × 64 KiB`, args: ["big", String(BIG_TXNS), "64"] },
];

/** BENCH_APP_ONLY=64,idle runs only the workloads whose names contain one of those words. */
const ONLY = Deno.env.get("BENCH_APP_ONLY")?.split(",") ?? null;
const chosen = (name: string) => ONLY === null || ONLY.some((w) => name.includes(w));
const WORKLOADS = ALL_WORKLOADS.filter((w) => chosen(w.name));

interface AppRun {
  txPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  cpu: number;
  rss: number;
}

/** A copy of the base database in a new directory, with the replicator started and settled. */
async function start(tool: Tool, base: string) {
  const dir = await Deno.makeTempDir({ prefix: `strata-appload-${tool}-` });
  const db = join(dir, "app.db");
  await Deno.copyFile(base, db);
  const replica = join(dir, "replica");
  let rep: BenchReplicator | null = null;
  if (tool !== "none") {
    rep = new BenchReplicator(tool, dir, db, replica, {
      sync: "1s",
      // BENCH_STRATA_MONITOR=100ms: strata's monitor-interval instead of its default
      monitor: tool === "strata" ? Deno.env.get("BENCH_STRATA_MONITOR") : undefined,
    });
    // settled: the first full copy is in the replica and nothing has changed there for 2 s
    const end = Date.now() + 120_000;
    let last = -1;
    let since = Date.now();
    while (true) {
      const n = await bytesUnder(replica);
      if (n !== last) [last, since] = [n, Date.now()];
      else if (n > 0 && Date.now() - since > 2_000) break;
      if (Date.now() > end) throw new Error(`${tool} did not settle: ${await rep.stop()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { dir, db, replica, rep };
}

async function appRun(tool: Tool, base: string, w: Workload): Promise<AppRun> {
  const s = await start(tool, base);
  try {
    const pid = s.rep?.child.pid;
    const cpu0 = pid ? cpuSeconds(pid) : 0;
    const r = JSON.parse(await run("python3", [WORKLOAD, s.db, ...w.args]));
    // the replicator's work for these commits ends when its replica has them: wait one sync
    await new Promise((res) => setTimeout(res, pid ? 1_500 : 0));
    return {
      txPerSec: r.txPerSec,
      p50: r.p50,
      p99: r.p99,
      p999: r.p999,
      cpu: pid ? cpuSeconds(pid) - cpu0 : 0,
      rss: pid ? peakRssMiB(pid) : 0,
    };
  } finally {
    if (s.rep) await s.rep.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
}

async function idle(tool: Exclude<Tool, "none">, base: string) {
  const s = await start(tool, base);
  try {
    const pid = s.rep!.child.pid;
    const cpu0 = cpuSeconds(pid);
    const cs0 = threadSwitches(pid);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    return {
      cpuPct: (100 * (cpuSeconds(pid) - cpu0)) / IDLE_SECONDS,
      wakeups: switchesBetween(cs0, threadSwitches(pid)) / IDLE_SECONDS,
      rss: procStatus(pid, "VmRSS"),
      replicaMB: (await bytesUnder(s.replica)) / 1e6,
    };
  } finally {
    await s.rep!.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  const lsVersion = await ensureLitestream();
  const baseDir = await Deno.makeTempDir({ prefix: "strata-appload-base-" });
  const base = join(baseDir, "base.db");
  await run("python3", [WORKLOAD, base, "init"]);
  await run("python3", [WORKLOAD, base, "fill", String(DB_MB)]);
  const dbMB = (await Deno.stat(base)).size / 1e6;
  console.log(`base database ${dbMB.toFixed(0)} MB`);

  const results = new Map<string, AppRun[]>();
  for (const w of WORKLOADS) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const tool of TOOLS) {
        const r = await appRun(tool, base, w);
        const key = `${w.name}|${tool}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        console.log(
          `${w.name} round ${round + 1} ${tool}: ${r.txPerSec.toFixed(0)} tx/s, p50 ${r.p50} ` +
            `p99 ${r.p99} p99.9 ${r.p999} ms, cpu ${r.cpu.toFixed(2)} s, rss ${
              r.rss.toFixed(0)
            } MiB`,
        );
      }
    }
  }
  const idles = chosen("idle")
    ? { strata: await idle("strata", base), litestream: await idle("litestream", base) }
    : null;
  console.log("idle", idles);
  await Deno.remove(baseDir, { recursive: true });

  const f = (n: number, d = 0) => n.toFixed(d);
  const row = (w: Workload, tool: Tool): string => {
    const rs = results.get(`${w.name}|${tool}`)!;
    const m = (k: keyof AppRun) => median(rs.map((r) => r[k]));
    const base = median(results.get(`${w.name}|none`)!.map((r) => r.txPerSec));
    const share = tool === "none" ? "" : ` (${f((100 * m("txPerSec")) / base)}%)`;
    const rep = tool === "none" ? "— | —" : `${f(m("cpu"), 2)} | ${f(m("rss"))}`;
    return `| ${w.name} | ${tool === "litestream" ? `Litestream ${lsVersion}` : tool} | ${
      f(m("txPerSec"))
    }${share} | ${f(m("p50"), 2)} / ${f(m("p99"), 2)} / ${f(m("p999"), 2)} | ${rep} |`;
  };
  const date = new Date().toISOString().slice(0, 10);
  const md = `## ${date} — weight on the app beside Litestream ${lsVersion} (issue 16)

Machine: ${machine()}. Run with \`deno run -A bench/app_load_bench.ts\` (part of \`deno task
bench\`). The app is \`bench/workload.py\` in its own process (Python's sqlite3, WAL,
synchronous=NORMAL, default wal_autocheckpoint) on a copy of one ${f(dbMB)} MB database; each
replicator copies it to a local directory with sync-interval 1s and its default monitor interval,
and settles (first full copy in the replica) before the app starts. Medians of ${ROUNDS} rounds,
tools interleaved; ${SECONDS} s per rate. Latency is BEGIN to COMMIT returned, in the app.
Replicator CPU is over the workload plus 1.5 s; RSS is its peak.

| workload | replicator | app tx/s | commit latency p50 / p99 / p99.9 (ms) | replicator CPU-s | peak RSS (MiB) |
| --- | --- | --- | --- | --- | --- |
${WORKLOADS.flatMap((w) => TOOLS.map((t) => row(w, t))).join("\n")}

${idles ? idleTable(idles, dbMB, lsVersion) : ""}`;
  console.log("\n" + md);
  if (!QUICK && ONLY === null) await writeBenchSection("app-load-bench", md);
}

function idleTable(
  idles: Record<"strata" | "litestream", Awaited<ReturnType<typeof idle>>>,
  dbMB: number,
  lsVersion: string,
): string {
  const f = (n: number, d = 0) => n.toFixed(d);
  return `Idle for ${IDLE_SECONDS} s with the database unchanged, after the first full copy:

| replicator | CPU (% of a core) | context switches/s (all threads) | RSS (MiB) | replica bytes (MB) / database (MB) |
| --- | --- | --- | --- | --- |
| strata | ${f(idles.strata.cpuPct, 2)} | ${f(idles.strata.wakeups, 1)} | ${
    f(idles.strata.rss)
  } | ${f(idles.strata.replicaMB, 1)} / ${f(dbMB, 1)} |
| Litestream ${lsVersion} | ${f(idles.litestream.cpuPct, 2)} | ${
    f(idles.litestream.wakeups, 1)
  } | ${f(idles.litestream.rss)} | ${f(idles.litestream.replicaMB, 1)} / ${f(dbMB, 1)} |
`;
}

if (import.meta.main) await main();

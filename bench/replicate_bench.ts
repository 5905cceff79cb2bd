/**
 * Replication side by side with Litestream v0.3.13 (npm
 * `@flydotio/litestream-linux-x64`) on the same workloads, one run:
 *
 * - write overhead: an app (bench/workload.py, its own process) commits small
 *   transactions as fast as it can, with no replicator, with strata and with
 *   Litestream (rounds interleaved);
 * - lag: the app commits 50 heartbeats/s; a watcher reads every new replica
 *   file as it appears and records when each heartbeat became visible;
 * - capture CPU: CPU-seconds the replicator process spends per GB of WAL
 *   written by a bulk workload, from its start until the replica holds the
 *   last transaction.
 *
 * Both tools run with a 100 ms monitor interval and a 100 ms sync interval
 * to a local directory. Results go to docs/benchmarks.md between markers.
 */

import { join } from "node:path";
import { decodeLtx } from "../src/ltx/mod.ts";
import { lz4DecodeWholeFrame } from "../src/ltx/lz4.ts";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";
import {
  BenchReplicator,
  cpuSeconds,
  ensureLitestream,
  machine,
  peakRssMiB,
  run,
  writeBenchSection,
} from "./report.ts";

type Tool = "none" | "strata" | "litestream";

const WORKLOAD = join(PROJECT_ROOT, "bench/workload.py");
/** BENCH_QUICK=1 shrinks every run (a smoke test of the benchmark itself). */
const QUICK = Deno.env.get("BENCH_QUICK") === "1";
const BURST_SECONDS = QUICK ? 2 : 8;
const BURST_ROUNDS = QUICK ? 1 : 3;
const PACED_RATE = 50;
const PACED_SECONDS = QUICK ? 4 : 30;
const BULK_TXNS = QUICK ? 500 : 6000;

function workload(db: string, ...args: string[]): Promise<string> {
  return run("python3", [WORKLOAD, db, ...args]);
}

/** Both replicators at a 100 ms monitor and sync interval, as the tables below say. */
class Replicator extends BenchReplicator {
  constructor(tool: Exclude<Tool, "none">, dir: string, db: string, replica: string) {
    super(tool, dir, db, replica, { monitor: "100ms", sync: "100ms" });
  }
}

const SEQ = new TextEncoder().encode("SEQ:");

/** The largest heartbeat number in `bytes`. */
function maxSeq(bytes: Uint8Array): number {
  let best = 0;
  let i = bytes.indexOf(SEQ[0]);
  while (i >= 0 && i + 14 <= bytes.length) {
    if (bytes[i + 1] === SEQ[1] && bytes[i + 2] === SEQ[2] && bytes[i + 3] === SEQ[3]) {
      let n = 0;
      let ok = true;
      for (let k = i + 4; k < i + 14; k++) {
        const d = bytes[k] - 48;
        if (d < 0 || d > 9) {
          ok = false;
          break;
        }
        n = n * 10 + d;
      }
      if (ok && n > best) best = n;
    }
    i = bytes.indexOf(SEQ[0], i + 1);
  }
  return best;
}

/** Watches a replica directory and notes when each heartbeat first becomes visible. */
class Watcher {
  readonly seen = new Map<number, number>();
  #files = new Set<string>();
  #max = 0;
  #stop = false;
  #loop: Promise<void>;
  constructor(readonly tool: Exclude<Tool, "none">, readonly root: string) {
    this.#loop = this.#run();
  }
  get max(): number {
    return this.#max;
  }
  async #walk(dir: string, out: string[]): Promise<void> {
    try {
      for await (const e of Deno.readDir(dir)) {
        const p = join(dir, e.name);
        if (e.isDirectory) await this.#walk(p, out);
        else if (/\.(ltx|wal\.lz4|snapshot\.lz4)$/.test(e.name)) out.push(p);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  async #scan(): Promise<void> {
    const files: string[] = [];
    await this.#walk(this.root, files);
    for (const f of files.sort()) {
      if (this.#files.has(f)) continue;
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(f);
      } catch {
        continue; // renamed or pruned meanwhile
      }
      const now = Date.now();
      let top = 0;
      try {
        if (f.endsWith(".ltx")) {
          for (const p of (await decodeLtx(bytes, f)).pages) top = Math.max(top, maxSeq(p.data));
        } else {
          top = maxSeq(lz4DecodeWholeFrame(bytes));
        }
      } catch {
        continue; // still being written: read it again next time
      }
      this.#files.add(f);
      for (let s = this.#max + 1; s <= top; s++) this.seen.set(s, now);
      this.#max = Math.max(this.#max, top);
    }
  }
  async #run(): Promise<void> {
    while (!this.#stop) {
      await this.#scan();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  async until(seq: number, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.#max < seq && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    return this.#max >= seq;
  }
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
  }
}

async function hasFiles(root: string): Promise<boolean> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(join(dir, e.name));
        else if (/\.(ltx|lz4)$/.test(e.name)) out.push(e.name);
      }
    } catch { /* not yet */ }
  };
  await walk(root);
  return out.length > 0;
}

interface Setup {
  dir: string;
  db: string;
  replica: string;
  rep: Replicator | null;
}

async function setup(tool: Tool): Promise<Setup> {
  const dir = await Deno.makeTempDir({ prefix: `strata-bench-${tool}-` });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  await workload(db, "init");
  let rep: Replicator | null = null;
  if (tool !== "none") {
    rep = new Replicator(tool, dir, db, replica);
    const end = Date.now() + 30_000;
    while (!(await hasFiles(replica))) {
      if (Date.now() > end) throw new Error(`${tool} did not start: ${await rep.stop()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { dir, db, replica, rep };
}

async function teardown(s: Setup): Promise<void> {
  if (s.rep) await s.rep.stop();
  await Deno.remove(s.dir, { recursive: true });
}

async function burst(tool: Tool): Promise<{ rate: number; cpu: number }> {
  const s = await setup(tool);
  try {
    const cpu0 = s.rep ? cpuSeconds(s.rep.child.pid) : 0;
    const r = JSON.parse(await workload(s.db, "burst", String(BURST_SECONDS)));
    const cpu = s.rep ? cpuSeconds(s.rep.child.pid) - cpu0 : 0;
    return { rate: r.commits / r.seconds, cpu };
  } finally {
    await teardown(s);
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function lag(tool: Exclude<Tool, "none">) {
  const s = await setup(tool);
  const w = new Watcher(tool, s.replica);
  try {
    const out = join(s.dir, "commits.txt");
    await workload(s.db, "paced", String(PACED_RATE), String(PACED_SECONDS), out);
    const commits = (await Deno.readTextFile(out)).trim().split("\n").map((l) =>
      l.split(" ").map(Number)
    );
    const last = commits[commits.length - 1][0];
    if (!(await w.until(last, 15_000))) throw new Error(`${tool}: heartbeat ${last} never arrived`);
    const lags = commits.map(([seq, at]) => w.seen.get(seq)! - at).sort((a, b) => a - b);
    return {
      n: lags.length,
      p50: percentile(lags, 50),
      p90: percentile(lags, 90),
      p99: percentile(lags, 99),
      max: lags[lags.length - 1],
    };
  } finally {
    await w.stop();
    await teardown(s);
  }
}

async function bulkWalBytes(): Promise<number> {
  const s = await setup("none");
  try {
    return JSON.parse(await workload(s.db, "bulk", String(BULK_TXNS), "nockpt")).walBytes;
  } finally {
    await teardown(s);
  }
}

async function bulk(tool: Exclude<Tool, "none">, walBytes: number) {
  const s = await setup(tool);
  const w = new Watcher(tool, s.replica);
  try {
    const pid = s.rep!.child.pid;
    const cpu0 = cpuSeconds(pid);
    const t0 = performance.now();
    await workload(s.db, "bulk", String(BULK_TXNS));
    const written = performance.now();
    if (!(await w.until(BULK_TXNS, 120_000))) throw new Error(`${tool}: bulk never caught up`);
    const cpu = cpuSeconds(pid) - cpu0;
    return {
      cpuPerGB: cpu / (walBytes / 1e9),
      cpu,
      appSeconds: (written - t0) / 1000,
      catchUpMs: performance.now() - written,
      rssMiB: peakRssMiB(pid),
    };
  } finally {
    await w.stop();
    await teardown(s);
  }
}

async function main() {
  const lsVersion = await ensureLitestream();
  const fmt = (n: number, d = 0) => n.toFixed(d);

  console.log("write overhead (burst)…");
  const rates: Record<Tool, number[]> = { none: [], strata: [], litestream: [] };
  const burstCpu: Record<Tool, number[]> = { none: [], strata: [], litestream: [] };
  for (let round = 0; round < BURST_ROUNDS; round++) {
    for (const tool of ["none", "strata", "litestream"] as Tool[]) {
      const r = await burst(tool);
      rates[tool].push(r.rate);
      burstCpu[tool].push(r.cpu);
      console.log(`  round ${round + 1} ${tool}: ${fmt(r.rate)} commits/s, cpu ${fmt(r.cpu, 2)} s`);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = mean(rates.none);

  console.log("lag (paced)…");
  const lagS = await lag("strata");
  console.log("  strata", lagS);
  const lagL = await lag("litestream");
  console.log("  litestream", lagL);

  console.log("capture CPU (bulk)…");
  const walBytes = await bulkWalBytes();
  const bulkS = await bulk("strata", walBytes);
  console.log("  strata", bulkS);
  const bulkL = await bulk("litestream", walBytes);
  console.log("  litestream", bulkL);

  const date = new Date().toISOString().slice(0, 10);
  const pct = (x: number) => `${fmt((100 * x) / base, 1)}%`;
  const md = `## ${date} — replication beside Litestream ${lsVersion} (issue 3)

Machine: ${machine()}. Run with \`deno run -A bench/replicate_bench.ts\` (part of \`deno task
bench\`); the app is \`bench/workload.py\` (Python's sqlite3, WAL, synchronous=NORMAL) in its own
process. Both replicators run with monitor-interval 100ms and sync-interval 100ms to a local
directory; strata runs from source (\`deno run\`), Litestream is the released binary.

| what | no replicator | strata | Litestream ${lsVersion} | target |
| --- | --- | --- | --- | --- |
| app throughput, small transactions (commits/s, mean of ${BURST_ROUNDS} × ${BURST_SECONDS} s) | ${
    fmt(base)
  } | ${fmt(mean(rates.strata))} (${pct(mean(rates.strata))}) | ${fmt(mean(rates.litestream))} (${
    pct(mean(rates.litestream))
  }) | strata ≥ 95% |
| replicator CPU during those bursts (s per ${BURST_SECONDS} s) | — | ${
    fmt(mean(burstCpu.strata), 2)
  } | ${fmt(mean(burstCpu.litestream), 2)} | — |
| lag COMMIT → in replica, p50 / p90 (ms), ${PACED_RATE} commits/s for ${PACED_SECONDS} s | — | ${
    fmt(lagS.p50)
  } / ${fmt(lagS.p90)} | ${fmt(lagL.p50)} / ${fmt(lagL.p90)} | — |
| lag p99 / max (ms) | — | ${fmt(lagS.p99)} / ${fmt(lagS.max)} | ${fmt(lagL.p99)} / ${
    fmt(lagL.max)
  } | strata p99 ≤ 250 |
| capture CPU per GB of WAL (${BULK_TXNS} × 16 KB transactions, ${
    fmt(walBytes / 1e6)
  } MB of WAL) | — | ${fmt(bulkS.cpuPerGB, 1)} s | ${
    fmt(bulkL.cpuPerGB, 1)
  } s | strata ≤ Litestream |
| app time for the bulk workload (s) | — | ${fmt(bulkS.appSeconds, 1)} | ${
    fmt(bulkL.appSeconds, 1)
  } | — |
| catch-up after the app's last commit (ms) | — | ${fmt(bulkS.catchUpMs)} | ${
    fmt(bulkL.catchUpMs)
  } | — |
| replicator peak RSS during bulk (MiB) | — | ${fmt(bulkS.rssMiB)} | ${fmt(bulkL.rssMiB)} | — |

Lag is measured by a watcher polling the replica every 5 ms and decoding each new file (strata's
LTX files; Litestream's LZ4 WAL segments) for the app's heartbeat row, so it includes up to ~5 ms
of polling delay for both tools.
`;
  console.log("\n" + md);
  if (QUICK) return;
  await writeBenchSection("replicate-bench", md);
}

if (import.meta.main) await main();

/**
 * Many databases in one process (issue 16): BENCH_DBS (default 1,000) small
 * WAL databases under one directory, replicated by one `strata replicate`
 * (directory replication) to a local directory. Measures the time until
 * every database is replicating, RSS per database, idle CPU and context
 * switches, whether anything is written to the replica while idle, and a
 * burst of writes spread over all of them (time until every replica holds
 * its database's last write, by the replica's file count).
 *
 * BENCH_QUICK=1: 50 databases, short idle (a smoke run; nothing written to docs).
 */

import { join } from "node:path";
import {
  cpuSeconds,
  machine,
  procStatus,
  run,
  STRATA_RUN_ARGS,
  switchesBetween,
  threadSwitches,
  writeBenchSection,
} from "./report.ts";

const QUICK = Deno.env.get("BENCH_QUICK") === "1";
const N = QUICK ? 50 : Number(Deno.env.get("BENCH_DBS") ?? "1000");
/** A replica's lease (lock.json) lives 60 s and lapses when not renewed (no writes). */
const LEASE_LAPSE_MS = QUICK ? 0 : 75_000;
const IDLE_SECONDS = Number(Deno.env.get("BENCH_IDLE_SECONDS") ?? (QUICK ? 5 : 60));

const APP = `
import sqlite3, sys
data, phase, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    con = sqlite3.connect("%s/db-%04d.db" % (data, i), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    if phase == "create":
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.execute("INSERT INTO t (v) VALUES (?)", ("%s-%d" % (phase, i) * 20,))
    con.close()
`;

/** Every file under `dir` with its size and mtime, as one comparable string. */
async function listing(dir: string): Promise<{ files: number; key: string }> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else {
        const st = await Deno.stat(p).catch(() => null);
        if (st) out.push(`${p} ${st.size} ${st.mtime?.getTime()}`);
      }
    }
  };
  await walk(dir).catch(() => {});
  return { files: out.length, key: out.sort().join("\n") };
}

/** How many files differ between two listings, with a few of them named. */
function changedFiles(a: string, b: string): string {
  const x = new Set(a.split("\n"));
  const y = new Set(b.split("\n"));
  const changed = [...y].filter((l) => !x.has(l)).concat([...x].filter((l) => !y.has(l)));
  if (changed.length === 0) return "0";
  const names = changed.slice(0, 3).map((l) => l.split(" ")[0].split("/").slice(-3).join("/"));
  return `${changed.length} (${names.join(", ")})`;
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-many-" });
  const data = join(dir, "data");
  const replica = join(dir, "replica");
  await Deno.mkdir(data);
  await run("python3", ["-c", APP, data, "create", String(N)]);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `dbs:\n  - dir: ${data}\n    pattern: "*.db"\n    replicas:\n      - url: file://${replica}\n        sync-interval: 1s\n`,
  );
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...STRATA_RUN_ARGS, "replicate", "-config", cfg],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const c of child.stderr) log += dec.decode(c, { stream: true });
  })();
  try {
    while ((log.match(/INFO replicating db=/g) ?? []).length < N) {
      if (performance.now() - t0 > 600_000) throw new Error(`not all replicating:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const startSeconds = (performance.now() - t0) / 1000;
    // settled: every first snapshot written, nothing changing for 3 s
    let last = "";
    let since = Date.now();
    while (Date.now() - since < 3_000) {
      const l = await listing(replica);
      if (l.key !== last) [last, since] = [l.key, Date.now()];
      await new Promise((r) => setTimeout(r, 500));
    }
    const rssStart = procStatus(child.pid, "VmRSS");
    // each replica's lease lapses once after a minute without writes (one request per database);
    // the idle window starts after that
    await new Promise((r) => setTimeout(r, LEASE_LAPSE_MS));
    const before = await listing(replica);
    const cpu0 = cpuSeconds(child.pid);
    const cs0 = threadSwitches(child.pid);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idleCpu = (100 * (cpuSeconds(child.pid) - cpu0)) / IDLE_SECONDS;
    const idleCs = switchesBetween(cs0, threadSwitches(child.pid)) / IDLE_SECONDS;
    const after = await listing(replica);
    const rssIdle = procStatus(child.pid, "VmRSS");

    // a burst: one commit in every database; done when every replica has one more file
    const b0 = performance.now();
    const cpuB = cpuSeconds(child.pid);
    await run("python3", ["-c", APP, data, "write", String(N)]);
    while ((await listing(replica)).files < after.files + N) {
      if (performance.now() - b0 > 300_000) throw new Error("the burst never reached the replicas");
      await new Promise((r) => setTimeout(r, 200));
    }
    const burstSeconds = (performance.now() - b0) / 1000;
    const burstCpu = cpuSeconds(child.pid) - cpuB;
    const rssPeak = procStatus(child.pid, "VmHWM");

    const f = (n: number, d = 0) => n.toFixed(d);
    const date = new Date().toISOString().slice(0, 10);
    const md = `## ${date} — ${N} databases in one process (issue 16)

Machine: ${machine()}. Run with \`deno run -A bench/many_dbs_bench.ts\` (part of \`deno task
bench\`): ${N} small WAL databases under one directory, \`dbs: - dir:\` with pattern \`*.db\`, one
\`strata replicate\` to a local directory replica, sync-interval 1s, default monitor interval.

| measure | strata | target |
| --- | --- | --- |
| start until every database is replicating (s) | ${f(startSeconds, 1)} | ≤ 30 |
| RSS after start, settled (MiB) | ${f(rssStart)} (${
      f((rssStart * 1024) / N)
    } KiB per database) | — |
| RSS idle after ${IDLE_SECONDS} s (MiB) | ${f(rssIdle)} (${
      f((rssIdle * 1024) / N)
    } KiB per database) | ≤ 1 MiB per database |
| idle CPU (% of a core) | ${f(idleCpu, 2)} | ≤ 2 |
| idle context switches/s (all threads) | ${f(idleCs)} | — |
| replica writes while idle, after the leases lapsed (files changed) | ${
      changedFiles(before.key, after.key)
    } | 0 |
| burst: one commit in each database, until every replica has it (s) | ${f(burstSeconds, 1)} | — |
| replicator CPU for the burst (s) | ${f(burstCpu, 2)} | — |
| peak RSS (MiB) | ${f(rssPeak)} | — |
`;
    console.log(md);
    if (!QUICK) await writeBenchSection("many-dbs-bench", md);
  } finally {
    child.kill("SIGINT");
    await child.status;
    await reading.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();

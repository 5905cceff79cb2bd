/**
 * A soak (issue 16): strata and Litestream v0.3.13 side by side, each
 * replicating its own copy of one database (BENCH_SOAK_DB_MB, default 12 MB)
 * to a local directory while an app (bench/workload.py, its own process per
 * copy) commits 50 small transactions a second for BENCH_SOAK_MINUTES
 * (default 30). Every 30 s: each replicator's RSS, strata's meta directory
 * size. The question: does memory stay flat, and does the meta directory
 * stay bounded?
 *
 * BENCH_QUICK=1: 1 minute, nothing written to docs.
 */

import { join } from "node:path";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";
import {
  BenchReplicator,
  bytesUnder,
  ensureLitestream,
  machine,
  procStatus,
  run,
  writeBenchSection,
} from "./report.ts";

const QUICK = Deno.env.get("BENCH_QUICK") === "1";
const MINUTES = QUICK ? 1 : Number(Deno.env.get("BENCH_SOAK_MINUTES") ?? "30");
const DB_MB = Number(Deno.env.get("BENCH_SOAK_DB_MB") ?? "12");
const SAMPLE_MS = QUICK ? 10_000 : 30_000;
const WORKLOAD = join(PROJECT_ROOT, "bench/workload.py");

async function main(): Promise<void> {
  const lsVersion = await ensureLitestream();
  const dir = await Deno.makeTempDir({ prefix: "strata-soak-" });
  const base = join(dir, "base.db");
  await run("python3", [WORKLOAD, base, "init"]);
  await run("python3", [WORKLOAD, base, "fill", String(DB_MB)]);
  const tools = ["strata", "litestream"] as const;
  const reps = new Map<string, { rep: BenchReplicator; db: string; app: Promise<string> }>();
  try {
    for (const tool of tools) {
      const d = join(dir, tool);
      await Deno.mkdir(d);
      const db = join(d, "app.db");
      await Deno.copyFile(base, db);
      const rep = new BenchReplicator(tool, d, db, join(d, "replica"), { sync: "1s" });
      reps.set(tool, { rep, db, app: Promise.resolve("") });
    }
    await new Promise((r) => setTimeout(r, 5_000)); // the first full copies
    for (const [, r] of reps) {
      r.app = run("python3", [WORKLOAD, r.db, "rate", "50", String(MINUTES * 60)]);
    }
    const rows: string[] = [];
    const start = Date.now();
    while (Date.now() - start < MINUTES * 60_000) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      const s = reps.get("strata")!;
      const l = reps.get("litestream")!;
      const meta = await bytesUnder(join(dir, "strata", ".app.db-strata"));
      const row = `| ${((Date.now() - start) / 60_000).toFixed(1)} | ${
        procStatus(s.rep.child.pid, "VmRSS").toFixed(0)
      } | ${procStatus(l.rep.child.pid, "VmRSS").toFixed(0)} | ${(meta / 1e6).toFixed(1)} |`;
      rows.push(row);
      console.log(row);
    }
    for (const [, r] of reps) await r.app;
    const peaks = tools.map((t) => procStatus(reps.get(t)!.rep.child.pid, "VmHWM").toFixed(0));
    const every = Math.max(1, Math.floor(rows.length / 12));
    const date = new Date().toISOString().slice(0, 10);
    const md = `## ${date} — ${MINUTES}-minute soak beside Litestream ${lsVersion} (issue 16)

Machine: ${machine()}. Run with \`deno run -A bench/soak_bench.ts\`: each replicator replicates its
own copy of a ${DB_MB} MB database to a local directory (sync-interval 1s) while an app commits 50
small transactions a second for ${MINUTES} minutes. RSS sampled every ${SAMPLE_MS / 1000} s (every
${every}th sample shown); strata's meta directory is everything under \`.app.db-strata\`.

| minutes | strata RSS (MiB) | Litestream RSS (MiB) | strata meta directory (MB) |
| --- | --- | --- | --- |
${rows.filter((_, i) => i % every === every - 1 || i === rows.length - 1).join("\n")}

Peak RSS: strata ${peaks[0]} MiB, Litestream ${peaks[1]} MiB.
`;
    console.log(md);
    if (!QUICK) await writeBenchSection("soak-bench", md);
  } finally {
    for (const [, r] of reps) await r.rep.stop().catch(() => "");
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();

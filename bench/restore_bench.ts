/**
 * Restore from a local directory replica, strata beside Litestream v0.3.13
 * and `cp` + `sync`, in one run (issue 17): one text-like database (1 GiB by
 * default, RESTORE_BENCH_MIB), replicated by each tool (one snapshot), then
 * restored by each, rounds interleaved; wall time and peak RSS of each
 * process, and the restored bytes compared with the source. Also `strata
 * version` and a restore of a 100 KB replica (start-up cost).
 */

import { join } from "node:path";
import { makeTextDatabase } from "./sample_db.ts";
import {
  ensureLitestream,
  LITESTREAM,
  machine,
  median,
  STRATA_RUN_ARGS,
  writeBenchSection,
} from "./report.ts";

const MIB = Number(Deno.env.get("RESTORE_BENCH_MIB") ?? 1024);
const ROUNDS = Number(Deno.env.get("RESTORE_BENCH_ROUNDS") ?? 3);
const STRATA = [Deno.execPath(), ...STRATA_RUN_ARGS];
const TIME = "/usr/bin/time";

interface Run {
  seconds: number;
  peakMiB: number;
}

/** Runs a command to completion: wall time, and peak RSS (from GNU time when it is there). */
async function timed(cmd: string[], env: Record<string, string> = {}): Promise<Run> {
  const hasTime = await Deno.stat(TIME).then(() => true, () => false);
  const argv = hasTime ? [TIME, "-f", "%M", ...cmd] : cmd;
  const t0 = performance.now();
  const r = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(r.stderr);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}): ${err}`);
  const kib = hasTime ? Number(err.trim().split("\n").pop()) : NaN;
  return { seconds, peakMiB: kib / 1024 };
}

/** Runs a replicator until `done()`, then stops it with SIGINT. */
async function replicateUntil(cmd: string[], done: () => Promise<boolean>): Promise<void> {
  const child = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" })
    .spawn();
  try {
    const deadline = Date.now() + 15 * 60_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`${cmd.join(" ")}: no snapshot after 15 min`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    child.kill("SIGINT");
    await child.status;
  }
}

/** Whether `dir` holds a file whose name ends with `suffix` (false when it does not exist). */
async function holds(dir: string, suffix: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) if (e.name.endsWith(suffix)) return true;
  } catch { /* not there yet */ }
  return false;
}

/** The names of the entries of `dir` (none when it does not exist). */
async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch { /* not there yet */ }
  return out;
}

/** The rows table's row count, read by Python's sqlite3. */
async function rowCount(path: string): Promise<number> {
  const r = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3; print(sqlite3.connect(${
        JSON.stringify(path)
      }).execute("SELECT count(*) FROM rows").fetchone()[0])`,
    ],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(r.stdout));
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const r = await new Deno.Command("cmp", { args: ["-s", a, b] }).output();
  return r.code === 0;
}

async function main() {
  const lsVersion = await ensureLitestream();
  const dir = await Deno.makeTempDir({ prefix: "strata-restore-bench-" });
  try {
    const db = join(dir, "source.db");
    makeTextDatabase(db, MIB);
    // both replicators read a WAL database
    await new Deno.Command("python3", {
      args: [
        "-c",
        `import sqlite3; sqlite3.connect(${JSON.stringify(db)}).execute("PRAGMA journal_mode=WAL")`,
      ],
    }).output();
    const size = (await Deno.stat(db)).size;
    console.log(`database: ${(size / 2 ** 20).toFixed(0)} MiB; replicating with strata…`);
    const sRep = join(dir, "strata-replica");
    await replicateUntil(
      [...STRATA, "replicate", db, `file://${sRep}`],
      () => holds(join(sRep, "ltx", "9"), ".ltx"),
    );
    console.log("replicating with Litestream…");
    const lRep = join(dir, "litestream-replica");
    const lCfg = join(dir, "litestream.yml");
    // Litestream adds its own tables to the database it replicates: it gets a copy
    const lDb = join(dir, "litestream-source.db");
    await Deno.copyFile(db, lDb);
    Deno.writeTextFileSync(lCfg, `dbs:\n  - path: ${lDb}\n    replicas:\n      - path: ${lRep}\n`);
    await replicateUntil([LITESTREAM, "replicate", "-config", lCfg], async () => {
      const gens = join(lRep, "generations");
      for (const g of await names(gens)) {
        if (await holds(join(gens, g, "snapshots"), ".lz4")) return true;
      }
      return false;
    });
    const bytes = async (p: string): Promise<number> => {
      let n = 0;
      for await (const e of Deno.readDir(p)) {
        const q = join(p, e.name);
        n += e.isDirectory ? await bytes(q) : (await Deno.stat(q)).size;
      }
      return n;
    };
    const sBytes = await bytes(sRep);
    const lBytes = await bytes(lRep);

    const tools: [string, (out: string) => string[]][] = [
      ["strata (checksums, quick_check)", (o) => [...STRATA, "restore", "-o", o, `file://${sRep}`]],
      [
        "strata -integrity-check none",
        (o) => [...STRATA, "restore", "-integrity-check", "none", "-o", o, `file://${sRep}`],
      ],
      [`Litestream ${lsVersion}`, (o) => [LITESTREAM, "restore", "-o", o, `file://${lRep}`]],
      ["`cp` + `sync`", (o) => ["sh", "-c", `cp '${db}' '${o}' && sync '${o}'`]],
    ];
    const runs = new Map<string, Run[]>(tools.map(([name]) => [name, []]));
    for (let i = 0; i < ROUNDS; i++) {
      for (const [name, cmd] of tools) {
        const out = join(dir, "out.db");
        await Deno.remove(out).catch(() => {});
        const r = await timed(cmd(out));
        // Litestream's copy holds its own tables too: the same rows are what can be compared
        const exact = name.startsWith("Litestream")
          ? await rowCount(out) === await rowCount(db)
          : await sameBytes(db, out);
        if (!exact) throw new Error(`${name}: the restored database differs from the source`);
        runs.get(name)!.push(r);
        console.log(
          `round ${i + 1} ${name}: ${r.seconds.toFixed(2)} s, ${r.peakMiB.toFixed(0)} MiB`,
        );
      }
    }
    await Deno.remove(join(dir, "out.db")).catch(() => {});

    // start-up: version, and a restore of a 100 KB replica
    const small = join(dir, "small.db");
    await new Deno.Command("python3", {
      args: [
        "-c",
        `import sqlite3; c=sqlite3.connect(${
          JSON.stringify(small)
        }); c.execute("PRAGMA journal_mode=WAL"); ` +
        `c.execute("CREATE TABLE t(x)"); c.executemany("INSERT INTO t VALUES (?)", [("x"*50,)]*1500); c.commit()`,
      ],
    }).output();
    const smallRep = join(dir, "small-replica");
    await replicateUntil(
      [...STRATA, "replicate", small, `file://${smallRep}`],
      () => holds(join(smallRep, "ltx", "9"), ".ltx"),
    );
    const startup = { version: [] as number[], small: [] as number[], lsVersion: [] as number[] };
    for (let i = 0; i < 7; i++) {
      startup.version.push((await timed([...STRATA, "version"])).seconds);
      startup.lsVersion.push((await timed([LITESTREAM, "version"])).seconds);
      const out = join(dir, "small-out.db");
      await Deno.remove(out).catch(() => {});
      startup.small.push(
        (await timed([...STRATA, "restore", "-o", out, `file://${smallRep}`])).seconds,
      );
    }

    const ls = median(runs.get(`Litestream ${lsVersion}`)!.map((r) => r.seconds));
    const cp = median(runs.get("`cp` + `sync`")!.map((r) => r.seconds));
    const strata = median(runs.get("strata (checksums, quick_check)")!.map((r) => r.seconds));
    const rows = tools.map(([name]) => {
      const rs = runs.get(name)!;
      const t = median(rs.map((r) => r.seconds));
      const peak = Math.max(...rs.map((r) => r.peakMiB));
      return `| ${name} | ${rs.map((r) => r.seconds.toFixed(2)).join(" | ")} | ${t.toFixed(2)} | ${
        (t / ls).toFixed(2)
      } | ${(t / cp).toFixed(1)} | ${Number.isNaN(peak) ? "—" : peak.toFixed(0)} |`;
    });
    const date = new Date().toISOString().slice(0, 10);
    const ms = (xs: number[]) => (median(xs) * 1000).toFixed(0);
    const md =
      `## ${date} — restore from a directory replica beside Litestream ${lsVersion} (issue 17)

Machine: ${machine()}. Run with \`deno run -A bench/restore_bench.ts\` (part of \`deno task
bench\`). One ${(size / 2 ** 20).toFixed(0)} MiB text-like database (rows with indexes), replicated
by each tool to its own directory (one snapshot: strata ${(sBytes / 1e6).toFixed(0)} MB, Litestream
${(lBytes / 1e6).toFixed(0)} MB), then restored by each, rounds interleaved, page cache warm; every
restore is compared with the source. strata runs from source (\`deno run\`), verifies every page's
CRC-64, the file checksums and the database checksum, and fsyncs; its pages are decoded on worker
threads by a WebAssembly kernel.

| restore (s) | ${
        runs.get(tools[0][0])!.map((_, i) => `round ${i + 1}`).join(" | ")
      } | median | × Litestream | × \`cp\` | peak RSS (MiB) |
| --- | ${runs.get(tools[0][0])!.map(() => "---").join(" | ")} | --- | --- | --- | --- |
${rows.join("\n")}

strata / Litestream = ${(strata / ls).toFixed(2)} (target ≤ 0.7: ${
        strata / ls <= 0.7 ? "met" : "not met"
      }).

Start-up (medians of 7): \`strata version\` ${ms(startup.version)} ms (\`litestream version\` ${
        ms(startup.lsVersion)
      } ms; target ≤ 60); \`strata restore\` of a 100 KB replica ${
        ms(startup.small)
      } ms (target ≤ 100).
`;
    console.log("\n" + md);
    if (MIB >= 1024) await writeBenchSection("restore-bench", md);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();

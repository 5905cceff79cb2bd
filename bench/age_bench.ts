/**
 * What age encryption costs (issue 19): the same text database (1 GiB by
 * default, AGE_BENCH_MIB) replicated with `replicate -once` into a file
 * replica with and without `age:`, then restored from each; wall time and
 * CPU time of every process, rounds interleaved, medians. Every restore is
 * compared with the source's rows.
 */

import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { makeTextDatabase } from "./sample_db.ts";
import { machine, median, STRATA_RUN_ARGS, writeBenchSection } from "./report.ts";

const MIB = Number(Deno.env.get("AGE_BENCH_MIB") ?? 1024);
const ROUNDS = Number(Deno.env.get("AGE_BENCH_ROUNDS") ?? 3);
const TIME = "/usr/bin/time";

interface Run {
  wall: number;
  cpu: number;
}

async function timed(args: string[]): Promise<Run> {
  const t0 = performance.now();
  const r = await new Deno.Command(TIME, {
    args: ["-f", "%U %S", Deno.execPath(), ...STRATA_RUN_ARGS, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  const wall = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(r.stderr).trim();
  if (r.code !== 0) throw new Error(`strata ${args.join(" ")} failed: ${err}`);
  const [u, s] = err.split("\n").pop()!.split(" ").map(Number);
  return { wall, cpu: u + s };
}

async function rows(path: string): Promise<string> {
  const r = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("SELECT count(*), sum(n) FROM rows").fetchone())`,
      path,
    ],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(r.stdout).trim();
}

async function main() {
  const dir = await Deno.makeTempDir({ prefix: "strata-age-bench-" });
  try {
    const db = join(dir, "app.db");
    makeTextDatabase(db, MIB);
    await new Deno.Command("python3", {
      args: [
        "-c",
        "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')",
        db,
      ],
    }).output();
    const want = await rows(db);
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const cfg = (name: string, age: boolean) => {
      const p = join(dir, `${name}.yml`);
      Deno.writeTextFileSync(
        p,
        `dbs:\n  - path: ${db}\n    meta-path: ${
          join(dir, `meta-${name}`)
        }\n    replica:\n      url: file://${join(dir, name)}\n` + (age
          ? `      age:\n        recipients: [${recipient}]\n        identities: [${identity}]\n`
          : ""),
      );
      return p;
    };
    const results: Record<string, { capture: Run[]; restore: Run[] }> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, age] of [["plain", false], ["age", true]] as const) {
        const c = cfg(`${name}-${round}`, age);
        const capture = await timed(["replicate", "-once", "-config", c]);
        const out = join(dir, `${name}-${round}.db`);
        const restore = await timed(["restore", "-config", c, "-no-progress", "-o", out, db]);
        if ((await rows(out)) !== want) throw new Error(`${name} round ${round}: restore differs`);
        await Deno.remove(out);
        (results[name] ??= { capture: [], restore: [] }).capture.push(capture);
        results[name].restore.push(restore);
        console.log(
          `round ${round} ${name}: capture ${capture.wall.toFixed(2)} s (${
            capture.cpu.toFixed(2)
          } CPU-s), restore ${restore.wall.toFixed(2)} s (${restore.cpu.toFixed(2)} CPU-s)`,
        );
      }
    }
    const m = (name: string, k: "capture" | "restore", f: "wall" | "cpu") =>
      median(results[name][k].map((r) => r[f]));
    const ratio = (k: "capture" | "restore", f: "wall" | "cpu") =>
      m("age", k, f) / m("plain", k, f);
    const date = new Date().toISOString().slice(0, 10);
    const text = `## ${date} — what age encryption costs (issue 19)

${machine()}. Run with \`deno run -A bench/age_bench.ts\` (part of \`deno task bench\`). One ${MIB} MiB
text-like database replicated with \`replicate -once\` (a snapshot) into a file replica without and
with \`age:\`, then restored from each with quick_check; medians of ${ROUNDS} interleaved rounds;
every restore has the source's rows.

| | without age | with age | extra | target |
| --- | --- | --- | --- | --- |
| capture + upload, CPU-s | ${m("plain", "capture", "cpu").toFixed(2)} | ${
      m("age", "capture", "cpu").toFixed(2)
    } | ${((ratio("capture", "cpu") - 1) * 100).toFixed(0)}% | ≤ 15% |
| restore, wall (s) | ${m("plain", "restore", "wall").toFixed(2)} | ${
      m("age", "restore", "wall").toFixed(2)
    } | ${((ratio("restore", "wall") - 1) * 100).toFixed(0)}% | ≤ 15% |
| restore, CPU-s | ${m("plain", "restore", "cpu").toFixed(2)} | ${
      m("age", "restore", "cpu").toFixed(2)
    } | ${((ratio("restore", "cpu") - 1) * 100).toFixed(0)}% | — |
`;
    console.log(text);
    await writeBenchSection("age-bench", text);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await main();

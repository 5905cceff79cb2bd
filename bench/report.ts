/**
 * Shared by the benchmarks: the Litestream binary they compare with, running a
 * command, the machine line and writing a section of docs/benchmarks.md.
 */

import { join } from "node:path";
import { homedir } from "node:os";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";
import { V8_FLAGS } from "../compile/build.ts";

/** `deno` arguments running strata from source as the release binary runs (its V8 flags). */
export const STRATA_RUN_ARGS = [
  "run",
  "-A",
  `--v8-flags=${V8_FLAGS}`,
  join(PROJECT_ROOT, "main.ts"),
];

const CACHE = join(homedir(), ".cache/strata-bench");
/** The released Litestream v0.3.13 binary (npm `@flydotio/litestream-linux-x64`). */
export const LITESTREAM = join(CACHE, "node_modules/@flydotio/litestream-linux-x64/litestream");

/** Runs a command to completion; its stdout, or an error with its stderr. */
export async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(r.stderr)}`);
  }
  return dec.decode(r.stdout);
}

/** Installs Litestream v0.3.13 into the bench cache once; returns its version. */
export async function ensureLitestream(): Promise<string> {
  try {
    await Deno.stat(LITESTREAM);
  } catch {
    await Deno.mkdir(CACHE, { recursive: true });
    await run("npm", ["install", "--no-save", "@flydotio/litestream-linux-x64@1.0.1"], CACHE);
  }
  const v = (await run(LITESTREAM, ["version"])).trim();
  if (v !== "v0.3.13") throw new Error(`expected Litestream v0.3.13, found ${v}`);
  return v;
}

export function machine(): string {
  const info = Deno.readTextFileSync("/proc/cpuinfo");
  const model = /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? "unknown CPU";
  return `${navigator.hardwareConcurrency} cores, ${model}, ${
    Math.round(Deno.systemMemoryInfo().total / 2 ** 30)
  } GiB, Linux ${Deno.osRelease()}, Deno ${Deno.version.deno}`;
}

/** Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` (or appends it). */
export async function writeBenchSection(name: string, md: string): Promise<void> {
  const path = join(PROJECT_ROOT, "docs/benchmarks.md");
  const doc = await Deno.readTextFile(path);
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${md}${end}`;
  const i = doc.indexOf(start);
  const next = i >= 0
    ? doc.slice(0, i) + block + doc.slice(doc.indexOf(end) + end.length)
    : doc.trimEnd() + "\n\n" + block + "\n";
  await Deno.writeTextFile(path, next);
  // tables as `deno fmt` lays them out, so `deno task check` passes after a run
  await new Deno.Command(Deno.execPath(), { args: ["fmt", path], stdout: "null", stderr: "null" })
    .output();
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

/** A field of /proc/PID/status in kB (VmHWM, VmRSS) as MiB, or a count (voluntary_ctxt_switches). */
export function procStatus(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  if (!m) return NaN;
  return field.startsWith("Vm") ? Number(m[1]) / 1024 : Number(m[1]);
}

export function peakRssMiB(pid: number): number {
  return procStatus(pid, "VmHWM");
}

/** strata (from source) or Litestream replicating one database to a local directory. */
export class BenchReplicator {
  readonly child: Deno.ChildProcess;
  constructor(
    readonly tool: "strata" | "litestream",
    dir: string,
    db: string,
    replica: string,
    intervals: { monitor?: string; sync: string },
  ) {
    const cfg = join(dir, `${tool}.yml`);
    const monitor = intervals.monitor ? `    monitor-interval: ${intervals.monitor}\n` : "";
    const target = tool === "strata" ? `url: file://${replica}` : `path: ${replica}`;
    Deno.writeTextFileSync(
      cfg,
      `dbs:\n  - path: ${db}\n${monitor}    replicas:\n` +
        `      - ${target}\n        sync-interval: ${intervals.sync}\n`,
    );
    const [cmd, args] = tool === "strata"
      ? [Deno.execPath(), [...STRATA_RUN_ARGS, "replicate", "-config", cfg]]
      : [LITESTREAM, ["replicate", "-config", cfg]];
    this.child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
  }
  async stop(): Promise<string> {
    this.child.kill("SIGINT");
    const { stderr } = await this.child.output();
    return new TextDecoder().decode(stderr);
  }
}

/** Context switches so far of each thread of a process, by thread id. */
export function threadSwitches(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const tid = Number(t.name);
      out.set(
        tid,
        procStatus(tid, "voluntary_ctxt_switches") + procStatus(tid, "nonvoluntary_ctxt_switches"),
      );
    } catch { /* the thread ended */ }
  }
  return out;
}

/** Context switches between two threadSwitches readings (a thread that ended meanwhile is left out). */
export function switchesBetween(a: Map<number, number>, b: Map<number, number>): number {
  let n = 0;
  for (const [tid, v] of b) n += v - (a.get(tid) ?? 0);
  return n;
}

/** Bytes in the files under `dir` (0 when it is not there). */
export async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) n += await bytesUnder(p);
      else if (e.isFile) n += (await Deno.stat(p).catch(() => ({ size: 0 }))).size;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return n;
}

/** The median of `xs` (the upper one of an even count). */
export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

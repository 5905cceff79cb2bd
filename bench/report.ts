/**
 * Shared by the benchmarks: the Litestream binary they compare with, running a
 * command, the machine line and writing a section of docs/benchmarks.md.
 */

import { join } from "node:path";
import { homedir } from "node:os";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";

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
}

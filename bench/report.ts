/** Shared by the benchmarks: the machine line and writing a section of docs/benchmarks.md. */

import { join } from "node:path";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";

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

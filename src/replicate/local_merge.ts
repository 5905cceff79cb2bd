/**
 * Merges a run of local LTX files (in TXID order) into one stream, with a
 * bounded number of open inputs: past MAX_MERGE_INPUTS files, consecutive
 * groups are first merged into temporary files beside them, as often as it
 * takes. Used for merged L0 uploads and for compaction from local files.
 */

import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../fsutil.ts";
export { uploadOfMerge } from "../storage/client.ts";
import {
  type MergeInput,
  mergeLtx,
  mergeLtxStream,
  type MergeResult,
  parseLtxFileName,
  type TXIDRange,
  writerSink,
} from "../ltx/mod.ts";

/** Most inputs merged at once (each is an open file during the merge). */
export const MAX_MERGE_INPUTS = 64;

export interface LocalMerge {
  stream: ReadableStream<Uint8Array>;
  /** Settles when the merge has ended; rejects when any input is invalid. */
  result: Promise<MergeResult>;
  /** Closes every input and removes the temporary files (call when done, success or not). */
  close(): Promise<void>;
}

/** Starts merging `paths` (TXID order, contiguous) into one stream; `file` names it in errors. */
export async function mergeLocalFiles(paths: string[], file: string): Promise<LocalMerge> {
  const temps: string[] = [];
  const opened: Deno.FsFile[] = [];
  const close = async () => {
    for (const f of opened.splice(0)) {
      try {
        f.close();
      } catch { /* closed by its stream */ }
    }
    for (const t of temps.splice(0)) await Deno.remove(t).catch(() => {});
  };
  try {
    let inputs = paths;
    while (inputs.length > MAX_MERGE_INPUTS) {
      const next: string[] = [];
      for (let i = 0; i < inputs.length; i += MAX_MERGE_INPUTS) {
        const group = inputs.slice(i, i + MAX_MERGE_INPUTS);
        if (group.length === 1) {
          next.push(group[0]);
          continue;
        }
        const tmp = join(dirname(group[0]), `.merge-${crypto.randomUUID().slice(0, 8)}.tmp`);
        temps.push(tmp);
        await mergeToFile(group, tmp, file);
        next.push(tmp);
      }
      inputs = next;
    }
    const sources: MergeInput[] = [];
    for (const p of inputs) {
      const f = await Deno.open(p);
      opened.push(f);
      sources.push({ name: p, source: f.readable, expect: nameRange(p) });
    }
    const { stream, result } = mergeLtxStream(sources, { file });
    return { stream, result, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Merges `paths` (TXID order, contiguous) into the local file `out`, written atomically. */
export async function mergeIntoFile(paths: string[], out: string): Promise<void> {
  // as readable as its inputs (the monitor writes them no wider than the database)
  const mode = ((await Deno.stat(paths[0])).mode ?? 0o666) & 0o666;
  const merge = await mergeLocalFiles(paths, out);
  try {
    await writeFileAtomic(out, async (file) => {
      const sink = writerSink(file);
      for await (const chunk of merge.stream) await sink.write(chunk);
    }, mode);
    await merge.result;
  } finally {
    await merge.close();
  }
}

async function mergeToFile(paths: string[], out: string, file: string): Promise<void> {
  const opened: Deno.FsFile[] = [];
  const target = await Deno.open(out, { write: true, create: true, truncate: true });
  try {
    for (const p of paths) opened.push(await Deno.open(p));
    await mergeLtx(
      paths.map((p, i) => ({ name: p, source: opened[i].readable, expect: nameRange(p) })),
      writerSink(target),
      { file },
    );
  } finally {
    target.close();
    for (const f of opened) {
      try {
        f.close();
      } catch { /* closed by its stream */ }
    }
  }
}

/** The TXIDs a local file's name says it covers (none for the merge's own temporary files). */
function nameRange(path: string): TXIDRange | undefined {
  return parseLtxFileName(basename(path)) ?? undefined;
}

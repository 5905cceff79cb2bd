/** Pieces shared by the network replica clients: retries, a concurrency limit, names, times. */

import { formatLtxFileName } from "../ltx/names.ts";
import { type ByteSink, writerSink } from "../ltx/io.ts";
import { log } from "../log.ts";

/** `<root>/ltx/<level>/<min>-<max>.ltx` with `/` separators, as Litestream's LTXFilePath (path.Join). */
export function ltxKey(root: string, level: number, minTXID: bigint, maxTXID: bigint): string {
  return joinKey(ltxLevelDir(root, level), formatLtxFileName(minTXID, maxTXID));
}

/** `<root>/ltx/<level>`, as Litestream's LTXLevelDir (path.Join: cleaned, no trailing slash). */
export function ltxLevelDir(root: string, level: number): string {
  return joinKey(root, "ltx", String(level));
}

/** Go's path.Join: joins with `/` and cleans; a leading `/` is kept. */
export function joinKey(...parts: string[]): string {
  const all = parts.filter((p) => p !== "").join("/");
  const abs = all.startsWith("/");
  const out: string[] = [];
  for (const s of all.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(s);
  }
  const j = out.join("/");
  return abs ? "/" + j : j || (all ? "." : "");
}

/** A time as Go's time.RFC3339Nano in UTC: fraction without trailing zeros ("…:07.89Z", "…:07Z"). */
export function formatRFC3339Nano(d: Date): string {
  const iso = d.toISOString(); // 2026-03-04T05:06:07.890Z
  const [secs, frac] = iso.slice(0, -1).split(".");
  const f = (frac ?? "").replace(/0+$/, "");
  return `${secs}${f ? "." + f : ""}Z`;
}

/** Times in object metadata are read by the one RFC 3339 parser. */
export { parseRFC3339 } from "../rfc3339.ts";

/** An error after which retrying is pointless (authentication, missing container, …). */
export class PermanentStorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentStorageError";
  }
}

export interface RetryOptions {
  /** Attempts in all (first try included). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 6, baseDelayMs: 200, maxDelayMs: 10_000 };

/** Full-jitter exponential backoff: a random delay in [0, min(max, base·2^n)]. */
export function backoffDelay(attempt: number, o: RetryOptions): number {
  const cap = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + Math.random() * cap / 2);
}

/**
 * Runs `fn` until it succeeds, it throws an error `retryable` rejects, or the
 * attempts are used up; waits with backoff and jitter in between.
 */
export async function withRetry<T>(
  what: string,
  fn: (attempt: number) => Promise<T>,
  retryable: (e: unknown) => boolean,
  o: RetryOptions = DEFAULT_RETRY,
): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt + 1 >= o.attempts || !retryable(e)) throw e;
      const delay = backoffDelay(attempt, o);
      log("warn", "storage operation failed, retrying", {
        op: what,
        attempt: attempt + 1,
        delayMs: delay,
        error: e instanceof Error ? e.message : String(e),
      });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** At most `n` callers at a time. */
export class Limiter {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Runs `fn` over `items` with at most `n` in flight; rejects with the first error. */
export async function forEachLimited<T>(
  items: T[],
  n: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (failed === null && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== null) throw failed;
}

/** A stream's bytes, readable again for each retry of an upload. */
export interface ReplayableSource {
  size: number;
  /** The bytes when they fit in memory, else null (read them with `open`). */
  bytes(): Uint8Array | null;
  open(): Promise<ReadableStream<Uint8Array>>;
  /** Removes the temporary file, if any. */
  close(): Promise<void>;
}

/**
 * Reads `data` to its end once: up to `memoryLimit` bytes stay in memory,
 * a larger source goes to a temporary file. A source that fails midway fails
 * here, before anything is uploaded.
 */
export async function replayable(
  data: ReadableStream<Uint8Array>,
  memoryLimit: number,
): Promise<ReplayableSource> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let tmp: string | null = null;
  let file: Deno.FsFile | null = null;
  let sink: ByteSink | null = null;
  try {
    for await (const chunk of data) {
      size += chunk.length;
      if (!file && size > memoryLimit) {
        tmp = await Deno.makeTempFile({ prefix: "strata-upload-" });
        file = await Deno.open(tmp, { write: true });
        sink = writerSink(file);
        for (const c of chunks.splice(0)) await sink.write(c);
      }
      if (sink) await sink.write(chunk);
      else chunks.push(chunk);
    }
  } catch (e) {
    file?.close();
    if (tmp) await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file?.close();
  const path = tmp;
  let joined: Uint8Array | null = null;
  const bytes = (): Uint8Array | null => {
    if (path) return null;
    if (!joined) {
      joined = new Uint8Array(size);
      let off = 0;
      for (const c of chunks) {
        joined.set(c, off);
        off += c.length;
      }
    }
    return joined;
  };
  return {
    size,
    bytes,
    async open() {
      if (path) return (await Deno.open(path)).readable;
      const all = bytes()!;
      return new ReadableStream({
        start(c) {
          if (all.length) c.enqueue(all);
          c.close();
        },
      });
    },
    async close() {
      if (path) await Deno.remove(path).catch(() => {});
    },
  };
}

/**
 * A local cache of downloaded replica files, reused by restores: a second
 * restore (of a branch, or of any point of the same replica) downloads only
 * the files it does not have yet, typically the newest few.
 *
 * - Files are keyed by the replica's location, level and TXID range; replica
 *   files are never rewritten with other content under the same name.
 * - A download enters the cache only after the restore that read it
 *   succeeded, i.e. after its file checksum, its pre/post-apply checksums
 *   and the final database checksum were all verified.
 * - A cached file is never trusted blindly: its size must equal the listed
 *   size, the restore verifies it exactly as a download, and when a restore
 *   that read cached files fails, those files are evicted and the restore
 *   runs once more from the replica alone.
 * - The cache is bounded (least recently used files are evicted first).
 * - Cached files are 0600 and the folders strata makes for them 0700.
 *
 * `STRATA_CACHE_DIR` (default `~/.cache/strata/restore`) and
 * `STRATA_CACHE_SIZE` (default 2GiB; `0` disables) configure it. Files of
 * `file` replicas are local already and are not cached.
 */

import { dirname, join } from "node:path";
import { homedir } from "node:os";
import { formatLtxFileName } from "../ltx/mod.ts";
import {
  type ByteRange,
  ForwardingReplicaClient,
  type ReplicaClient,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "../storage/mod.ts";
import { log } from "../log.ts";
import type { RestoreResult } from "./execute.ts";
import { restoreTarget } from "./verified_restore.ts";
import { type IntegrityCheck, OutputExistsError, type OutputOptions } from "./output.ts";
import type { RestoreTarget } from "./plan.ts";
import type { ProgressFn } from "../progress.ts";

export const DEFAULT_CACHE_BYTES = 2 * 1024 ** 3;
/** Cached files hold database pages: readable by their owner only, as are the cache's folders. */
export const CACHE_FILE_MODE = 0o600;
export const CACHE_DIR_MODE = 0o700;

/**
 * Creates the folders of the cache file `path` (mode 0700), and makes its
 * replica's and level's folders 0700 also when an older strata made them.
 */
async function makePrivateDirs(path: string): Promise<void> {
  const level = dirname(path);
  await Deno.mkdir(level, { recursive: true, mode: CACHE_DIR_MODE });
  for (const d of [dirname(level), level]) await Deno.chmod(d, CACHE_DIR_MODE);
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
};

/** `2GiB`, `512MiB`, `1000000`. */
export function parseCacheSize(s: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`STRATA_CACHE_SIZE ${JSON.stringify(s)} is not a size (e.g. 2GiB, 0 = off)`);
  }
  return Number(m[1]) * unit;
}

export class RestoreCache {
  readonly dir: string;
  readonly maxBytes: number;
  /** Downloads of the running restore: final path -> tmp path. */
  readonly #pending = new Map<string, string>();
  /** Downloads being written: a file that fails its checks meanwhile is never admitted. */
  readonly #inflight = new Map<string, { rejected: boolean }>();
  /** Cached files the running restore read. */
  readonly #hits = new Set<string>();
  #hitBytes = 0;
  #missBytes = 0;

  constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** From STRATA_CACHE_DIR / STRATA_CACHE_SIZE; null when disabled. */
  static fromEnv(): RestoreCache | null {
    const size = parseCacheSize(Deno.env.get("STRATA_CACHE_SIZE") ?? String(DEFAULT_CACHE_BYTES));
    if (size <= 0) return null;
    const base = Deno.env.get("XDG_CACHE_HOME") ?? Deno.env.get("LOCALAPPDATA") ??
      join(homedir(), ".cache");
    return new RestoreCache(
      Deno.env.get("STRATA_CACHE_DIR") ?? join(base, "strata", "restore"),
      size,
    );
  }

  /** Bytes served from the cache / downloaded, since the last `stats` reset. */
  stats(reset = false): { hitBytes: number; missBytes: number } {
    const s = { hitBytes: this.#hitBytes, missBytes: this.#missBytes };
    if (reset) this.#hitBytes = this.#missBytes = 0;
    return s;
  }

  async pathFor(location: string, level: number, min: bigint, max: bigint): Promise<string> {
    const h = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(location)),
    );
    const id = [...h.subarray(0, 10)].map((b) => b.toString(16).padStart(2, "0")).join("");
    return join(this.dir, id, String(level), formatLtxFileName(min, max));
  }

  /** The cached copy, or null; a copy of the wrong size is removed. */
  async lookup(path: string, size: number | undefined): Promise<Deno.FsFile | null> {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(path);
    } catch {
      return null;
    }
    if (size !== undefined && st.size !== size) {
      await Deno.remove(path).catch(() => {});
      return null;
    }
    const f = await Deno.open(path).catch(() => null);
    if (!f) return null;
    const now = new Date();
    await Deno.utime(path, now, now).catch(() => {}); // recently used
    this.#hits.add(path);
    this.#hitBytes += st.size;
    return f;
  }

  /** Passes `data` through, keeping a copy that `commit` admits. */
  tee(path: string, data: ReadableStream<Uint8Array>, size?: number): ReadableStream<Uint8Array> {
    if (size !== undefined && size > this.maxBytes) return data;
    const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    const token = { rejected: false };
    this.#inflight.set(path, token);
    let file: Deno.FsFile | null = null;
    let written = 0;
    const drop = async () => {
      try {
        file?.close();
      } catch { /* closed */ }
      file = null;
      await Deno.remove(tmp).catch(() => {});
    };
    return data.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: async (chunk, ctrl) => {
          ctrl.enqueue(chunk);
          this.#missBytes += chunk.length;
          if (written < 0) return;
          try {
            if (!file) {
              await makePrivateDirs(path);
              file = await Deno.open(tmp, { write: true, createNew: true, mode: CACHE_FILE_MODE });
            }
            let off = 0;
            while (off < chunk.length) off += await file.write(chunk.subarray(off));
            written += chunk.length;
          } catch (e) {
            written = -1; // a full disk or similar: restore on without caching
            log("debug", "cache write failed", { path, error: e });
            await drop();
          }
        },
        flush: async () => {
          if (written < 0 || !file) return;
          file.close();
          file = null;
          if (this.#inflight.get(path) === token) this.#inflight.delete(path);
          if ((size !== undefined && written !== size) || token.rejected) return await drop();
          this.#pending.set(path, tmp);
        },
        cancel: drop,
      }),
    );
  }

  /**
   * Forgets a file that failed its checks: its download by the running
   * restore never enters the cache, and a cached copy it read is removed
   * (then true: the replica's own copy is worth reading).
   */
  async evict(path: string): Promise<boolean> {
    const writing = this.#inflight.get(path);
    if (writing) writing.rejected = true; // dropped when its download ends
    const tmp = this.#pending.get(path);
    if (tmp) {
      this.#pending.delete(path);
      await Deno.remove(tmp).catch(() => {});
    }
    if (!this.#hits.delete(path)) return false;
    await Deno.remove(path).catch(() => {});
    return true;
  }

  /** The restore succeeded: admit its downloads, then (when it added any) trim the cache to its bound. */
  async commit(): Promise<void> {
    const added = this.#pending.size > 0;
    for (const [path, tmp] of this.#pending) await Deno.rename(tmp, path).catch(() => {});
    this.#pending.clear();
    this.#hits.clear();
    if (added) await this.trim();
  }

  /** The restore failed: forget its downloads; returns the cached files it had read. */
  async abort(): Promise<string[]> {
    for (const tmp of this.#pending.values()) await Deno.remove(tmp).catch(() => {});
    this.#pending.clear();
    const hits = [...this.#hits];
    this.#hits.clear();
    return hits;
  }

  /** Evicts least recently used files until the cache fits its bound. */
  async trim(): Promise<void> {
    const files: { path: string; size: number; used: number }[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        const p = join(dir, e.name);
        if (e.isDirectory) await walk(p);
        else if (e.isFile && e.name.endsWith(".ltx")) {
          const st = await Deno.stat(p).catch(() => null);
          if (st) files.push({ path: p, size: st.size, used: st.mtime?.getTime() ?? 0 });
        }
      }
    };
    await walk(this.dir).catch(() => {});
    let total = files.reduce((s, f) => s + f.size, 0);
    files.sort((a, b) => a.used - b.used);
    for (const f of files) {
      if (total <= this.maxBytes) break;
      await Deno.remove(f.path).catch(() => {});
      total -= f.size;
    }
  }
}

/** Reads whole files through `cache`; listings note each file's size for the check on reuse. */
export class CachingReplicaClient extends ForwardingReplicaClient {
  readonly cache: RestoreCache;
  readonly #sizes = new Map<string, number>();

  constructor(inner: ReplicaClient, cache: RestoreCache) {
    super(inner);
    this.cache = cache;
  }

  override async listFiles(level: number, seek?: bigint): Promise<ReplicaFile[]> {
    const files = await this.inner.listFiles(level, seek);
    for (const f of files) this.#sizes.set(`${level}/${f.minTXID}-${f.maxTXID}`, f.size);
    return files;
  }

  override async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    if (range || level > SNAPSHOT_LEVEL) {
      return await this.inner.openFile(level, minTXID, maxTXID, range);
    }
    const size = this.#sizes.get(`${level}/${minTXID}-${maxTXID}`);
    const path = await this.cache.pathFor(this.location, level, minTXID, maxTXID);
    const hit = await this.cache.lookup(path, size);
    if (hit) return hit.readable;
    return this.cache.tee(path, await this.inner.openFile(level, minTXID, maxTXID), size);
  }

  /** Drops the cached copy of `f` the running restore read (it failed a check); false if none. */
  override async evictCached(f: ReplicaFile): Promise<boolean> {
    return await this.cache.evict(
      await this.cache.pathFor(this.location, f.level, f.minTXID, f.maxTXID),
    );
  }
}

/**
 * `restoreTarget` with the cache: admits the downloads once the restore has
 * verified them; when a restore that read cached files fails, evicts those
 * files and restores once more, downloading them again.
 */
export async function restoreTargetCached(
  client: ReplicaClient,
  target: RestoreTarget,
  outPath: string,
  opts: {
    integrityCheck?: IntegrityCheck;
    files?: ReplicaFile[];
    cache?: RestoreCache | null;
    onProgress?: ProgressFn;
  } & OutputOptions,
): Promise<RestoreResult> {
  const cache = opts.cache;
  if (!cache) return await restoreTarget(client, target, outPath, opts);
  try {
    const r = await restoreTarget(client, target, outPath, opts);
    await cache.commit();
    return r;
  } catch (e) {
    // the files were verified; only the output's place was taken
    if (e instanceof OutputExistsError) await cache.commit();
    const hits = await cache.abort();
    if (hits.length === 0) throw e;
    log("warn", "restore from cached files failed; evicting them and restoring from the replica", {
      files: hits.length,
      error: e,
    });
    for (const p of hits) await Deno.remove(p).catch(() => {});
    try {
      const r = await restoreTarget(client, target, outPath, opts); // no hits left: all downloaded
      await cache.commit();
      return r;
    } catch (e2) {
      await cache.abort();
      throw e2;
    }
  }
}

let shared: RestoreCache | null | undefined;

/** The process's cache, from the environment (null when disabled). */
export function restoreCache(): RestoreCache | null {
  if (shared === undefined) shared = RestoreCache.fromEnv();
  return shared;
}

/**
 * Compaction and retention for one replica (Litestream v0.5's levels):
 *
 * - level N (1..8) merges the level N-1 files newer than its own last file
 *   into one file, so a restore reads a few large files instead of many small
 *   ones; inputs come from the local meta directory when it still has them;
 * - retention deletes snapshots older than the retention (never the newest),
 *   files of levels 1..8 wholly before the oldest kept snapshot, and L0 files
 *   that are covered by L1 (or a kept snapshot) and older than l0-retention,
 *   but never the newest L0 file (Litestream v0.5 reads a replica's position
 *   from L0 alone).
 *   It never deletes a file the newest state needs, nor a file a live
 *   branch (`strata clone`) points at: those stay until the branch is deleted.
 */

import { basename, dirname, join } from "node:path";
import {
  formatLtxFileName,
  formatTXID,
  type MergeInput,
  mergeLtxStream,
  parseLtxFileName,
} from "../ltx/mod.ts";
import { type ReplicaFile, replicaFileLabel, SNAPSHOT_LEVEL } from "../storage/mod.ts";
import { planRestore } from "../restore/plan.ts";
import { log } from "../log.ts";
import { DEFAULT_MODES, type FileModes } from "../storage/file_modes.ts";
import { LtxFormatError } from "../ltx/errors.ts";
import { storedFilesOf } from "../storage/age_client.ts";
import { looksLikeAge } from "../storage/age_payload.ts";
import type { ReplicaIndex } from "./replica_index.ts";
import { fileKey, pinnedFiles } from "../branch/mod.ts";
import { MAX_MERGE_INPUTS, mergeLocalFiles, uploadOfMerge } from "./local_merge.ts";

export interface CompactionSettings {
  /** Intervals of levels 1..n (at most 8), in ms. */
  levelIntervalsMs: number[];
  snapshotIntervalMs: number;
  snapshotRetentionMs: number;
  l0RetentionMs: number;
  l0RetentionCheckIntervalMs: number;
  retentionEnabled: boolean;
}

export const DEFAULT_COMPACTION: CompactionSettings = {
  levelIntervalsMs: [30_000, 5 * 60_000, 60 * 60_000],
  snapshotIntervalMs: 24 * 3_600_000,
  snapshotRetentionMs: 24 * 3_600_000,
  l0RetentionMs: 5 * 60_000,
  // one delete request per check: 5 min rather than Litestream v0.5's 15 s (request economy)
  l0RetentionCheckIntervalMs: 5 * 60_000,
  retentionEnabled: true,
};

/** The next wall-clock multiple of `intervalMs` after `now`. */
export function nextAligned(now: number, intervalMs: number): number {
  return (Math.floor(now / intervalMs) + 1) * intervalMs;
}

export class Compactor {
  readonly index: ReplicaIndex;
  readonly #localL0Dir: string | null;
  /** Where this replica's L1 outputs are kept until L2 has merged them (null: not kept). */
  readonly #keptL1Dir: string | null;
  readonly #localModes: () => FileModes;
  readonly #settings: CompactionSettings;

  constructor(
    index: ReplicaIndex,
    settings: CompactionSettings,
    opts: { localL0Dir?: string; keepDir?: string; localModes?: () => FileModes } = {},
  ) {
    this.index = index;
    this.#settings = settings;
    this.#localL0Dir = opts.localL0Dir ?? null;
    // only worth it when an L2 will read them
    this.#localModes = opts.localModes ?? (() => DEFAULT_MODES);
    this.#keptL1Dir = opts.keepDir && settings.levelIntervalsMs.length >= 2
      ? join(opts.keepDir, "1")
      : null;
  }

  get settings(): CompactionSettings {
    return this.#settings;
  }

  /** The level N-1 files that level N takes next: contiguous, newer than its last file. */
  inputsFor(level: number): ReplicaFile[] {
    // nothing at or before the oldest snapshot is worth compacting: it restores from there;
    // nor files stored without encryption under an encrypted replica (older history)
    const oldest = this.index.files(SNAPSHOT_LEVEL)[0]?.maxTXID ?? 0n;
    const floor = oldest > this.index.unencryptedThrough ? oldest : this.index.unencryptedThrough;
    const last = this.index.last(level)?.maxTXID ?? 0n;
    const after = last > floor ? last : floor;
    const src = this.index.files(level - 1).filter((f) => f.maxTXID > after);
    if (src.length === 0) return [];
    // a file starting at TXID 1 (a full copy) begins a new chain; otherwise continue `after`
    let start = src.findLastIndex((f) => f.minTXID === 1n);
    if (start < 0) start = src.findIndex((f) => f.minTXID === after + 1n);
    if (start < 0) start = src.findIndex((f) => f.minTXID > after);
    if (start < 0) return [];
    const run = [src[start]];
    for (let i = start + 1; i < src.length && run.length < MAX_MERGE_INPUTS; i++) {
      if (src[i].minTXID !== run[run.length - 1].maxTXID + 1n) break;
      run.push(src[i]);
    }
    return run;
  }

  /** Compactions refused because an input or the output failed its checks (since start). */
  verifyErrors = 0;

  /** Merges the next inputs into one file at `level`; null when there is nothing new. */
  async compact(level: number): Promise<ReplicaFile | null> {
    try {
      return await this.#compact(level);
    } catch (e) {
      if (e instanceof LtxFormatError) this.verifyErrors++; // checksums, chain, header vs name
      throw e;
    }
  }

  async #compact(level: number): Promise<ReplicaFile | null> {
    if (level < 1 || level > 8) throw new Error(`compaction level ${level} is not 1..8`);
    await this.index.ensure();
    const inputs = this.inputsFor(level);
    if (inputs.length === 0) return null;
    const first = inputs[0];
    const last = inputs[inputs.length - 1];
    if (await this.#storedPlaintext(first)) {
      // written before age was switched on (inputs are contiguous: the plaintext ones come
      // first): never merged into an encrypted file, even from local copies
      this.index.unencryptedThrough = first.maxTXID;
      log("info", "compaction skips files stored without encryption", {
        replica: this.index.client.location,
        level,
        through: formatTXID(first.maxTXID),
      });
      return await this.#compact(level);
    }
    const name = formatLtxFileName(first.minTXID, last.maxTXID);
    // L1 reads the local L0 files, L2 the L1 files this process kept
    const localDir = level === 1 ? this.#localL0Dir : level === 2 ? this.#keptL1Dir : null;
    const local = localDir ? await localCover(localDir, first.minTXID, last.maxTXID) : null;
    // a local file pruned meanwhile: read the replica's copies instead
    const merge = local && await mergeLocalFiles(local, `L${level}/${name}`).catch(() => null);
    if (merge) {
      try {
        return await this.#write(level, inputs, merge.stream, merge.result, true);
      } finally {
        await merge.close();
      }
    }
    const sources: MergeInput[] = [];
    try {
      for (const f of inputs) {
        sources.push({
          name: replicaFileLabel(this.index.client.location, f),
          source: await this.index.client.openFile(f.level, f.minTXID, f.maxTXID),
          expect: f,
        });
      }
    } catch (e) {
      for (const s of sources) await (s.source as ReadableStream).cancel().catch(() => {});
      throw e;
    }
    const { stream, result } = mergeLtxStream(sources, { file: `L${level}/${name}` });
    return await this.#write(level, inputs, stream, result, false);
  }

  /** Under age: whether replica file `f` is stored without encryption (one 32-byte read). */
  async #storedPlaintext(f: ReplicaFile): Promise<boolean> {
    const stored = storedFilesOf(this.index.client);
    if (!stored) return false;
    const s = await stored.openFile(f.level, f.minTXID, f.maxTXID, { offset: 0, length: 32 });
    const head = new Uint8Array(await new Response(s).arrayBuffer());
    return !looksLikeAge(head);
  }

  async #write(
    level: number,
    inputs: ReplicaFile[],
    stream: ReadableStream<Uint8Array>,
    merged: Promise<unknown>,
    local: boolean,
  ): Promise<ReplicaFile> {
    const first = inputs[0];
    const last = inputs[inputs.length - 1];
    let file: ReplicaFile;
    if (level === 1 && this.#keptL1Dir) {
      // merged into a local file first, uploaded from it, and kept for L2
      const kept = join(this.#keptL1Dir, formatLtxFileName(first.minTXID, last.maxTXID));
      await writeLocal(kept, stream, merged, this.#localModes());
      const src = await Deno.open(kept);
      try {
        file = await this.index.client.writeFile(
          level,
          first.minTXID,
          last.maxTXID,
          src.readable,
          last.createdAt,
        );
      } catch (e) {
        await Deno.remove(kept).catch(() => {});
        throw e;
      } finally {
        try {
          src.close();
        } catch { /* closed by its stream */ }
      }
    } else {
      file = await uploadOfMerge(
        this.index.client.writeFile(level, first.minTXID, last.maxTXID, stream, last.createdAt),
        merged,
      );
    }
    if (level === 2 && this.#keptL1Dir) await pruneLocal(this.#keptL1Dir, file.maxTXID);
    this.index.add(file);
    log("debug", "compacted", {
      replica: this.index.client.location,
      level,
      file: formatLtxFileName(first.minTXID, last.maxTXID),
      inputs: inputs.length,
      local,
    });
    return file;
  }

  /** The files retention would delete now (see the module comment). */
  expired(now: number): ReplicaFile[] {
    const s = this.#settings;
    const out: ReplicaFile[] = [];
    const snaps = this.index.files(SNAPSHOT_LEVEL);
    let floor = 0n; // TXIDs up to here are before the oldest kept snapshot
    if (snaps.length > 0) {
      const newest = snaps[snaps.length - 1];
      const kept = snaps.filter((f) =>
        f === newest || now - f.createdAt.getTime() <= s.snapshotRetentionMs
      );
      out.push(...snaps.filter((f) => !kept.includes(f)));
      floor = kept[0].maxTXID;
      for (let level = 1; level < SNAPSHOT_LEVEL; level++) {
        out.push(...this.index.files(level).filter((f) => f.maxTXID <= floor));
      }
    }
    const l1 = this.index.last(1)?.maxTXID ?? 0n;
    const covered = l1 > floor ? l1 : floor;
    // the newest L0 file always stays, as Litestream v0.5 keeps it: Litestream takes a
    // replica's position from its L0 files alone, so switching back continues the chain
    const l0 = this.index.files(0).slice(0, -1);
    out.push(
      ...l0.filter((f) => f.maxTXID <= covered && now - f.createdAt.getTime() > s.l0RetentionMs),
    );
    return out;
  }

  /** Deletes what `expired` names, after checking the newest state stays restorable. */
  async enforceRetention(now: number): Promise<ReplicaFile[]> {
    if (!this.#settings.retentionEnabled) return [];
    await this.index.ensure();
    let gone = this.expired(now);
    if (gone.length === 0) return [];
    let pins: Set<string>;
    try {
      pins = await pinnedFiles(this.index.client);
    } catch (e) {
      log("error", "retention skipped: cannot read the replica's branch registry", {
        replica: this.index.client.location,
        error: e,
      });
      return [];
    }
    if (pins.size > 0) {
      const kept = gone.filter((f) => pins.has(fileKey(f)));
      gone = gone.filter((f) => !pins.has(fileKey(f)));
      if (kept.length > 0) {
        log("debug", "retention keeps files live branches need", {
          replica: this.index.client.location,
          kept: kept.length,
        });
      }
      if (gone.length === 0) return [];
    }
    const keys = new Set(gone.map((f) => `${f.level}/${f.minTXID}-${f.maxTXID}`));
    const remaining = this.index.all().filter((f) =>
      !keys.has(`${f.level}/${f.minTXID}-${f.maxTXID}`)
    );
    const latest = this.index.maxTXID();
    try {
      planRestore(remaining, { txid: latest }, this.index.client.location);
    } catch (e) {
      log("error", "retention skipped: deleting would leave the newest state unreachable", {
        replica: this.index.client.location,
        txid: formatTXID(latest),
        error: e,
      });
      return [];
    }
    await this.index.client.deleteFiles(gone);
    this.index.remove(gone);
    log("debug", "retention", { replica: this.index.client.location, deleted: gone.length });
    return gone;
  }
}

/** Paths of the local LTX files in `dir` covering exactly [min, max] contiguously, or null. */
async function localCover(dir: string, min: bigint, max: bigint): Promise<string[] | null> {
  const found: { name: string; minTXID: bigint; maxTXID: bigint }[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const r = e.isFile ? parseLtxFileName(e.name) : null;
      if (r && r.minTXID >= min && r.maxTXID <= max) found.push({ name: e.name, ...r });
    }
  } catch {
    return null;
  }
  found.sort((a, b) => (a.minTXID < b.minTXID ? -1 : a.minTXID > b.minTXID ? 1 : 0));
  let pos = min - 1n;
  for (const f of found) {
    if (f.minTXID !== pos + 1n) return null;
    pos = f.maxTXID;
  }
  if (pos !== max) return null;
  return found.map((f) => join(dir, f.name));
}

/** Writes a merge's output to `path` (through a temporary name); nothing is left on failure. */
async function writeLocal(
  path: string,
  stream: ReadableStream<Uint8Array>,
  merged: Promise<unknown>,
  modes: FileModes,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: modes.dir });
  const tmp = join(dirname(path), `.${basename(path)}.tmp`);
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: modes.file });
    await Promise.all([stream.pipeTo(f.writable), merged]);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Removes the kept files in `dir` that end at or before `txid` (a higher level has them). */
async function pruneLocal(dir: string, txid: bigint): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      const r = e.isFile ? parseLtxFileName(e.name) : null;
      if (r && r.maxTXID <= txid) await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  } catch { /* no directory yet */ }
}

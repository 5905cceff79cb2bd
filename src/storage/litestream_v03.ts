/**
 * The Litestream v0.3 replica layout reader (for migrating old backups):
 *
 *     <path>/generations/<16 hex>/snapshots/<index %08x>.snapshot.lz4
 *     <path>/generations/<16 hex>/wal/<index %08x>_<offset %08x>.wal.lz4
 *
 * Both are LZ4 frames: a snapshot is the whole database file at the start of
 * WAL index `index`; a WAL segment is the bytes of that index's WAL from
 * `offset` on (the 32-byte WAL header when the offset is 0, then frames).
 * Times are the files' modification times (file) or LastModified (S3), as
 * Litestream v0.3 reads them. Built on two primitives any client can offer
 * (`RawReplicaReader`); choosing what to restore follows v0.3.13.
 */

import { ReplicaFileNotFoundError } from "./client.ts";

/** One entry of a replica directory (names relative to the replica's root, `/`-separated). */
export interface RawEntry {
  name: string;
  /** A "directory" (an S3 common prefix). */
  isDir: boolean;
  size: number;
  modified: Date;
}

/** Listing and reading arbitrary paths under a replica's root (file and S3 clients offer it). */
export interface RawReplicaReader {
  readonly location: string;
  /** The immediate children of `dir` (relative to the replica root); [] when it does not exist. */
  listRaw(dir: string): Promise<RawEntry[]>;
  /** Opens the file at `path` (relative to the replica root). */
  openRaw(path: string): Promise<ReadableStream<Uint8Array>>;
}

export function isRawReplicaReader(c: unknown): c is RawReplicaReader {
  return typeof c === "object" && c !== null && "listRaw" in c && "openRaw" in c;
}

/** The raw reader behind `c`, looking through wrapping clients (their `inner`); null if none. */
export function rawReaderOf(c: unknown): RawReplicaReader | null {
  for (let x = c, depth = 0; x && depth < 8; depth++) {
    if (isRawReplicaReader(x)) return x;
    x = (x as { inner?: unknown }).inner;
  }
  return null;
}

export interface V03Snapshot {
  generation: string;
  index: number;
  size: number;
  createdAt: Date;
  path: string;
}

export interface V03Segment {
  generation: string;
  index: number;
  offset: number;
  size: number;
  createdAt: Date;
  path: string;
}

/** What to restore: a snapshot, then every WAL index from the snapshot's on, segments in order. */
export interface V03Plan {
  generation: string;
  snapshot: V03Snapshot;
  /** WAL indexes in order, each with its segments in offset order (the first at offset 0). */
  wal: { index: number; segments: V03Segment[] }[];
  /** Sum of the compressed sizes of everything to download. */
  bytes: number;
}

export class V03LayoutError extends Error {
  constructor(location: string, reason: string) {
    super(`Litestream v0.3 replica ${location}: ${reason}`);
    this.name = "V03LayoutError";
  }
}

const GENERATION = /^[0-9a-f]{16}$/;
const SNAPSHOT = /^([0-9a-f]{8})\.snapshot\.lz4$/;
const SEGMENT = /^([0-9a-f]{8})_([0-9a-f]{8})\.wal\.lz4$/;

/** Generation ids (16 lowercase hex digits) under `generations/`, sorted. */
export async function listGenerations(r: RawReplicaReader): Promise<string[]> {
  return (await r.listRaw("generations"))
    .filter((e) => e.isDir && GENERATION.test(baseName(e.name)))
    .map((e) => baseName(e.name))
    .sort();
}

/** True when the replica holds at least one v0.3 generation. */
export async function hasV03Generations(r: RawReplicaReader): Promise<boolean> {
  return (await listGenerations(r)).length > 0;
}

export async function listSnapshots(
  r: RawReplicaReader,
  generation: string,
): Promise<V03Snapshot[]> {
  const dir = `generations/${generation}/snapshots`;
  const out: V03Snapshot[] = [];
  for (const e of await r.listRaw(dir)) {
    const m = SNAPSHOT.exec(baseName(e.name));
    if (e.isDir || !m) continue;
    out.push({
      generation,
      index: parseInt(m[1], 16),
      size: e.size,
      createdAt: e.modified,
      path: `${dir}/${baseName(e.name)}`,
    });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** WAL segments of a generation by (index, offset). */
export async function listSegments(r: RawReplicaReader, generation: string): Promise<V03Segment[]> {
  const dir = `generations/${generation}/wal`;
  const out: V03Segment[] = [];
  for (const e of await r.listRaw(dir)) {
    const m = SEGMENT.exec(baseName(e.name));
    if (e.isDir || !m) continue;
    out.push({
      generation,
      index: parseInt(m[1], 16),
      offset: parseInt(m[2], 16),
      size: e.size,
      createdAt: e.modified,
      path: `${dir}/${baseName(e.name)}`,
    });
  }
  return out.sort((a, b) => a.index - b.index || a.offset - b.offset);
}

interface GenerationInfo {
  generation: string;
  snapshots: V03Snapshot[];
  segments: V03Segment[];
  createdAt: number;
  updatedAt: number;
}

/**
 * Chooses the generation, snapshot and WAL segments for the latest state or
 * the state at `timestamp`, as Litestream v0.3.13 does:
 * - generation: among those whose first..last file times contain the
 *   timestamp (any, for latest), the one updated last. strata adds one rule:
 *   a timestamp after every generation's last file picks the generation
 *   updated last before it (v0.3.13 refuses such a timestamp).
 * - snapshot: the newest created at or before the timestamp;
 * - WAL segments in (index, offset) order up to the first created after the
 *   timestamp, from the snapshot's index on; every index in between must be
 *   there and start at offset 0.
 *
 * And one rule v0.3.13 lacks (without it a restore at such a time yields a
 * malformed database): a v0.3 snapshot is a copy of the database file taken
 * while the app writes, so it may hold pages of transactions that only the WAL
 * segment written after it completes (Litestream checkpoints before copying,
 * and the app's own checkpoints may run during the copy). A snapshot therefore
 * counts at a timestamp only when the first segment created after it (of its
 * WAL index or a later one) was created by then too; otherwise the next older
 * snapshot, or the generation before, is used: an earlier, consistent state.
 */
export async function planV03Restore(
  r: RawReplicaReader,
  timestamp?: Date,
): Promise<V03Plan> {
  const generations = await listGenerations(r);
  if (generations.length === 0) throw new V03LayoutError(r.location, "no generations found");
  const infos: GenerationInfo[] = [];
  for (const generation of generations) {
    const snapshots = await listSnapshots(r, generation);
    const segments = await listSegments(r, generation);
    let createdAt = Infinity;
    let updatedAt = -Infinity;
    for (const f of [...snapshots, ...segments]) {
      createdAt = Math.min(createdAt, f.createdAt.getTime());
      updatedAt = Math.max(updatedAt, f.createdAt.getTime());
    }
    if (createdAt === Infinity) continue;
    infos.push({ generation, snapshots, segments, createdAt, updatedAt });
  }
  const t = timestamp?.getTime();
  const byUpdate = (list: GenerationInfo[]) => list.sort((a, b) => b.updatedAt - a.updatedAt);
  const candidates = t === undefined ? byUpdate(infos).slice(0, 1) : [
    ...byUpdate(infos.filter((g) => g.createdAt <= t && t <= g.updatedAt)),
    ...byUpdate(infos.filter((g) => g.updatedAt < t)),
  ];
  if (candidates.length === 0) {
    throw new V03LayoutError(
      r.location,
      t === undefined
        ? "no generation has any snapshot or WAL segment"
        : `no generation has data at or before ${timestamp!.toISOString()}`,
    );
  }
  const inTime = (d: Date) => t === undefined || d.getTime() <= t;
  const passed: string[] = [];
  for (const g of candidates) {
    const snapshots = g.snapshots.filter((s) => inTime(s.createdAt)).sort((a, b) =>
      b.createdAt.getTime() - a.createdAt.getTime() || b.index - a.index
    );
    for (const snapshot of snapshots) {
      const completing = completingSegment(g, snapshot);
      if (completing && !inTime(completing.createdAt)) {
        passed.push(
          `snapshot ${snapshot.path} (created ${snapshot.createdAt.toISOString()}) is completed ` +
            `only by ${completing.path}, created ${completing.createdAt.toISOString()}`,
        );
        continue;
      }
      return planFromSnapshot(r, g, snapshot, inTime);
    }
  }
  const first = candidates[0];
  throw new V03LayoutError(
    r.location,
    passed.length > 0
      ? `no consistent state at or before ${timestamp!.toISOString()}: ${passed.join("; ")}`
      : `generation ${first.generation} has no snapshot` +
        (t === undefined ? "" : ` at or before ${timestamp!.toISOString()}`),
  );
}

/** The first WAL segment of the snapshot's index or later created after the snapshot, if any. */
function completingSegment(g: GenerationInfo, snapshot: V03Snapshot): V03Segment | null {
  const after = snapshot.createdAt.getTime();
  for (const s of g.segments) {
    if (s.index >= snapshot.index && s.createdAt.getTime() > after) return s;
  }
  return null;
}

/** The snapshot, then every WAL index from its own on, segments in order while `inTime`. */
function planFromSnapshot(
  r: RawReplicaReader,
  g: GenerationInfo,
  snapshot: V03Snapshot,
  inTime: (d: Date) => boolean,
): V03Plan {
  const byIndex = new Map<number, V03Segment[]>();
  for (const s of g.segments) {
    if (!inTime(s.createdAt)) break; // in order: nothing after the first later segment counts
    const list = byIndex.get(s.index) ?? [];
    if (list.length === 0 && s.offset !== 0) {
      throw new V03LayoutError(
        r.location,
        `missing the first WAL segment of ${g.generation}/${hex8(s.index)} (the first is ${
          baseName(s.path)
        })`,
      );
    }
    list.push(s);
    byIndex.set(s.index, list);
  }
  let maxIndex = -1;
  for (const i of byIndex.keys()) maxIndex = Math.max(maxIndex, i);
  const wal: V03Plan["wal"] = [];
  let bytes = snapshot.size;
  for (let index = snapshot.index; index <= maxIndex; index++) {
    const segments = byIndex.get(index);
    if (!segments) {
      throw new V03LayoutError(
        r.location,
        `missing WAL index ${g.generation}/${hex8(index)} (segments up to ${hex8(maxIndex)} exist)`,
      );
    }
    for (const s of segments) bytes += s.size;
    wal.push({ index, segments });
  }
  return { generation: g.generation, snapshot, wal, bytes };
}

/** Opens a replica file, naming it when it is missing. */
export async function openV03File(
  r: RawReplicaReader,
  path: string,
): Promise<ReadableStream<Uint8Array>> {
  try {
    return await r.openRaw(path);
  } catch (e) {
    if (e instanceof ReplicaFileNotFoundError) throw e;
    throw new V03LayoutError(r.location, `cannot read ${path}: ${(e as Error).message}`);
  }
}

export function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function baseName(p: string): string {
  const s = p.replace(/\/+$/, "");
  return s.slice(s.lastIndexOf("/") + 1);
}

/**
 * Restores a Litestream v0.3 replica (see src/storage/litestream_v03.ts):
 * the snapshot streams into a temporary file (see output.ts), then each WAL index's segments are
 * decoded in order and their frames checked (salts, cumulative checksums,
 * contiguous offsets, whole transactions) and written in place, as a
 * checkpoint would; the file is cut to the last commit's size at the end of
 * each index. Then the page count in the database header is checked against
 * the file, an integrity check runs, and the file is fsynced and put in
 * place. A failed restore leaves the output path as it was.
 */

import * as fs from "node:fs";
import { BufferedReader, lz4FrameChunks } from "../ltx/mod.ts";
import {
  headerChecksum,
  parseWalHeader,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  type WalChecksum,
  walChecksum,
} from "../sqlite/mod.ts";
import {
  hex8,
  openV03File,
  type RawReplicaReader,
  type V03Plan,
  type V03Segment,
} from "../storage/mod.ts";
import { type ProgressCounter } from "../progress.ts";
import { RestoreError } from "./apply.ts";
import { type IntegrityCheck, type OutputOptions, writeRestoredDatabase } from "./output.ts";

export interface V03RestoreResult {
  path: string;
  generation: string;
  snapshotIndex: number;
  /** The last WAL index applied, or -1 when only the snapshot was restored. */
  walIndex: number;
  pageSize: number;
  pages: number;
  /** Snapshot + WAL segments read. */
  files: number;
}

const SQLITE_MAGIC = "SQLite format 3\0";

/** Writes the plan's database to `outPath` (which the caller made sure may be written). */
export async function executeV03Restore(
  reader: RawReplicaReader,
  plan: V03Plan,
  outPath: string,
  opts: { integrityCheck?: IntegrityCheck; progress?: ProgressCounter } & OutputOptions = {},
): Promise<V03RestoreResult> {
  return await writeRestoredDatabase(outPath, opts.integrityCheck ?? "quick", async (fd) => {
    const snapName = `${reader.location}/${plan.snapshot.path}`;
    let size = 0;
    const snapshot = openV03File(reader, plan.snapshot.path);
    for await (const chunk of decode(reader, plan.snapshot.path, snapshot, opts.progress)) {
      fs.writeSync(fd, chunk, 0, chunk.length, size);
      size += chunk.length;
    }
    const pageSize = readPageSize(fd, size, snapName);
    if (size % pageSize !== 0) {
      throw new RestoreError(`${snapName}: ${size} bytes is not a whole number of pages`);
    }
    let pages = size / pageSize;
    let files = 1;
    const segments = new Prefetcher(reader, plan.wal.flatMap((w) => w.segments.map((g) => g.path)));
    try {
      for (const w of plan.wal) {
        const commit = await applyWalIndex(
          fd,
          segments,
          plan.generation,
          w,
          pageSize,
          opts.progress,
        );
        files += w.segments.length;
        if (commit > 0) {
          fs.ftruncateSync(fd, commit * pageSize);
          pages = commit;
        }
      }
    } finally {
      segments.close();
    }
    checkHeaderPageCount(fd, pages, pageSize, outPath);
    return {
      path: outPath,
      generation: plan.generation,
      snapshotIndex: plan.snapshot.index,
      walIndex: plan.wal.length ? plan.wal[plan.wal.length - 1].index : -1,
      pageSize,
      pages,
      files,
    };
  }, opts);
}

/** How many WAL segments are opened ahead of the one being applied (latency of remote replicas). */
const SEGMENTS_AHEAD = 8;

/** Opens the WAL segments in order, a few ahead of the one asked for. */
class Prefetcher {
  readonly reader: RawReplicaReader;
  readonly #order: string[];
  readonly #index = new Map<string, number>();
  readonly #opened = new Map<string, Promise<ReadableStream<Uint8Array>>>();
  #next = 0;

  constructor(reader: RawReplicaReader, paths: string[]) {
    this.reader = reader;
    this.#order = paths;
    paths.forEach((p, i) => this.#index.set(p, i));
  }

  open(path: string): Promise<ReadableStream<Uint8Array>> {
    const last = Math.min(this.#order.length, (this.#index.get(path) ?? 0) + SEGMENTS_AHEAD + 1);
    for (; this.#next < last; this.#next++) {
      const p = openV03File(this.reader, this.#order[this.#next]);
      p.catch(() => {}); // surfaced when its turn comes
      this.#opened.set(this.#order[this.#next], p);
    }
    const p = this.#opened.get(path) ?? openV03File(this.reader, path);
    this.#opened.delete(path);
    return p;
  }

  /** Releases segments opened but not read (after a failure). */
  close(): void {
    for (const p of this.#opened.values()) p.then((s) => s.cancel()).catch(() => {});
    this.#opened.clear();
  }
}

/** The decompressed bytes of one replica file; errors name the file. */
async function* decode(
  reader: RawReplicaReader,
  path: string,
  opened: Promise<ReadableStream<Uint8Array>>,
  progress?: ProgressCounter,
): AsyncGenerator<Uint8Array> {
  let stream = await opened;
  if (progress) stream = progress.wrap(stream);
  try {
    yield* lz4FrameChunks(stream);
  } catch (e) {
    throw new RestoreError(
      `${reader.location}/${path}: ${(e as Error).message} (corrupt or truncated file)`,
    );
  }
}

function readPageSize(fd: number, size: number, name: string): number {
  const h = new Uint8Array(100);
  if (size < 100 || fs.readSync(fd, h, 0, 100, 0) < 100) {
    throw new RestoreError(`${name}: snapshot of ${size} bytes is too short for a database`);
  }
  if (new TextDecoder().decode(h.subarray(0, 16)) !== SQLITE_MAGIC) {
    throw new RestoreError(`${name}: not a SQLite database (bad header)`);
  }
  const raw = (h[16] << 8) | h[17];
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new RestoreError(`${name}: invalid page size ${raw} in the database header`);
  }
  return pageSize;
}

/**
 * The header's page count (valid when its change counter equals
 * version-valid-for, as SQLite itself decides) must match the file.
 */
function checkHeaderPageCount(fd: number, pages: number, pageSize: number, out: string): void {
  const h = new Uint8Array(100);
  fs.readSync(fd, h, 0, 100, 0);
  const dv = new DataView(h.buffer);
  const inHeader = dv.getUint32(28);
  if (dv.getUint32(24) !== dv.getUint32(92) || inHeader === 0) return;
  const actual = fs.fstatSync(fd).size / pageSize;
  if (inHeader !== pages || actual !== pages) {
    throw new RestoreError(
      `restored database ${out} has ${actual} pages but its header says ${inHeader}`,
    );
  }
}

/**
 * Applies one WAL index (its segments concatenated) to the database; returns
 * the database size in pages after its last commit (0 when it has no frames).
 */
async function applyWalIndex(
  fd: number,
  segments: Prefetcher,
  generation: string,
  w: { index: number; segments: V03Segment[] },
  pageSize: number,
  progress?: ProgressCounter,
): Promise<number> {
  const reader = segments.reader;
  const what = `WAL index ${generation}/${hex8(w.index)}`;
  const segmentAt = (offset: number) => {
    let s = w.segments[0];
    for (const x of w.segments) if (x.offset <= offset) s = x;
    return `${reader.location}/${s.path}`;
  };
  async function* bytes(): AsyncGenerator<Uint8Array> {
    let pos = 0;
    for (const s of w.segments) {
      if (s.offset !== pos) {
        throw new RestoreError(
          `${reader.location}: ${what}: segment ${s.path} starts at offset ${s.offset} but the segments before it end at ${pos} (a segment is missing or truncated)`,
        );
      }
      for await (const c of decode(reader, s.path, segments.open(s.path), progress)) {
        pos += c.length;
        yield c;
      }
    }
  }
  const r = new BufferedReader(bytes(), 1 << 20);
  if (!(await r.ensure(WAL_HEADER_SIZE))) {
    throw new RestoreError(`${segmentAt(0)}: ${what} is shorter than a WAL header`);
  }
  const header = parseWalHeader(r.buf.subarray(r.pos, r.pos + WAL_HEADER_SIZE));
  if (!header) throw new RestoreError(`${segmentAt(0)}: ${what} has no valid WAL header`);
  if (header.pageSize !== pageSize) {
    throw new RestoreError(
      `${segmentAt(0)}: WAL page size ${header.pageSize} differs from the database's ${pageSize}`,
    );
  }
  r.pos += WAL_HEADER_SIZE;
  const frameSize = WAL_FRAME_HEADER_SIZE + pageSize;
  let ck: WalChecksum = headerChecksum(header);
  let commit = 0;
  let pending = 0; // frames after the last commit frame
  let frameNo = 0;
  while (await r.ensure(frameSize)) {
    const offset = r.offset;
    const b = r.buf;
    const p = r.pos;
    const dv = new DataView(b.buffer, b.byteOffset + p, WAL_FRAME_HEADER_SIZE);
    const pgno = dv.getUint32(0);
    const frameCommit = dv.getUint32(4);
    frameNo++;
    if (dv.getUint32(8) !== header.salt1 || dv.getUint32(12) !== header.salt2) {
      throw new RestoreError(
        `${
          segmentAt(offset)
        }: ${what} frame ${frameNo} (offset ${offset}) has salts that do not match its WAL header`,
      );
    }
    ck = walChecksum(header.bigEndianChecksum, b, p, p + 8, ck);
    ck = walChecksum(header.bigEndianChecksum, b, p + WAL_FRAME_HEADER_SIZE, p + frameSize, ck);
    if (ck.s0 !== dv.getUint32(16) || ck.s1 !== dv.getUint32(20) || pgno === 0) {
      throw new RestoreError(
        `${
          segmentAt(offset)
        }: ${what} frame ${frameNo} (offset ${offset}) fails its checksum (corrupt segment)`,
      );
    }
    fs.writeSync(fd, b, p + WAL_FRAME_HEADER_SIZE, pageSize, (pgno - 1) * pageSize);
    r.pos += frameSize;
    if (frameCommit !== 0) {
      commit = frameCommit;
      pending = 0;
    } else {
      pending++;
    }
  }
  if (r.available > 0) {
    throw new RestoreError(
      `${
        segmentAt(r.offset)
      }: ${what} ends with ${r.available} bytes, less than a frame (truncated segment)`,
    );
  }
  if (pending > 0) {
    throw new RestoreError(
      `${
        segmentAt(r.offset)
      }: ${what} ends with ${pending} frames of an unfinished transaction (truncated segment)`,
    );
  }
  return commit;
}

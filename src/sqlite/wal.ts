/**
 * SQLite WAL file reading: header, frame headers, salts, cumulative frame
 * checksums in both byte orders, commit frames. The first frame that fails
 * any check ends the WAL (as SQLite itself treats it).
 */

export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
const MAGIC_LE = 0x377f0682;
const MAGIC_BE = 0x377f0683;

export class WalFormatError extends Error {
  constructor(path: string, reason: string) {
    super(`invalid WAL file ${path}: ${reason}`);
    this.name = "WalFormatError";
  }
}

export interface WalHeader {
  /** True when checksums are computed on big-endian words (magic 0x377f0683). */
  bigEndianChecksum: boolean;
  version: number;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

/** A running WAL checksum (s0, s1). */
export interface WalChecksum {
  s0: number;
  s1: number;
}

/** SQLite's WAL checksum over `data[start, end)` (a multiple of 8 bytes), continuing `ck`. */
export function walChecksum(
  bigEndian: boolean,
  data: Uint8Array,
  start: number,
  end: number,
  ck: WalChecksum,
): WalChecksum {
  if (((data.byteOffset + start) & 3) === 0 && (data.byteOffset & 3) === 0) {
    const words = new Int32Array(data.buffer, data.byteOffset, data.length >>> 2);
    return walChecksumWords(bigEndian, words, start >>> 2, end >>> 2, ck);
  }
  let s0 = ck.s0 | 0;
  let s1 = ck.s1 | 0;
  if (bigEndian) {
    for (let i = start; i < end; i += 8) {
      const x0 = (data[i] << 24) | (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3];
      const x1 = (data[i + 4] << 24) | (data[i + 5] << 16) | (data[i + 6] << 8) | data[i + 7];
      s0 = (s0 + x0 + s1) | 0;
      s1 = (s1 + x1 + s0) | 0;
    }
  } else {
    for (let i = start; i < end; i += 8) {
      const x0 = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
      const x1 = data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24);
      s0 = (s0 + x0 + s1) | 0;
      s1 = (s1 + x1 + s0) | 0;
    }
  }
  return { s0: s0 >>> 0, s1: s1 >>> 0 };
}

/** Whether this machine stores 32-bit words little-endian (a typed array's word order). */
const NATIVE_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The same checksum over whole 32-bit words `words[start, end)` (an even
 * count) of a buffer in the machine's word order: about four times the
 * byte loop's speed on the pages of a capture.
 */
export function walChecksumWords(
  bigEndian: boolean,
  words: Int32Array,
  start: number,
  end: number,
  ck: WalChecksum,
): WalChecksum {
  let s0 = ck.s0 | 0;
  let s1 = ck.s1 | 0;
  if (bigEndian === !NATIVE_LE) {
    for (let i = start; i < end; i += 2) {
      s0 = (s0 + words[i] + s1) | 0;
      s1 = (s1 + words[i + 1] + s0) | 0;
    }
  } else {
    for (let i = start; i < end; i += 2) {
      const a = words[i];
      const b = words[i + 1];
      s0 = (s0 + ((a << 24) | ((a << 8) & 0xff0000) | ((a >>> 8) & 0xff00) | (a >>> 24)) + s1) | 0;
      s1 = (s1 + ((b << 24) | ((b << 8) & 0xff0000) | ((b >>> 8) & 0xff00) | (b >>> 24)) + s0) | 0;
    }
  }
  return { s0: s0 >>> 0, s1: s1 >>> 0 };
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** Parses a WAL header; returns null when the 32 bytes are not a valid WAL header. */
export function parseWalHeader(b: Uint8Array): WalHeader | null {
  if (b.length < WAL_HEADER_SIZE) return null;
  const magic = u32(b, 0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) return null;
  const h: WalHeader = {
    bigEndianChecksum: magic === MAGIC_BE,
    version: u32(b, 4),
    pageSize: u32(b, 8) === 1 ? 65536 : u32(b, 8),
    checkpointSeq: u32(b, 12),
    salt1: u32(b, 16),
    salt2: u32(b, 20),
    checksum1: u32(b, 24),
    checksum2: u32(b, 28),
  };
  if (h.version !== 3007000) return null;
  if (h.pageSize < 512 || h.pageSize > 65536 || (h.pageSize & (h.pageSize - 1)) !== 0) return null;
  const ck = walChecksum(h.bigEndianChecksum, b, 0, 24, { s0: 0, s1: 0 });
  if (ck.s0 !== h.checksum1 || ck.s1 !== h.checksum2) return null;
  return h;
}

export interface WalFrame {
  /** Byte offset of the frame header in the WAL file. */
  offset: number;
  pgno: number;
  /** Database size in pages after this frame's transaction; 0 unless a commit frame. */
  commit: number;
}

export interface WalScan {
  /** Valid frames up to and including the last commit frame. */
  frames: WalFrame[];
  /** Offset just past the last commit frame (the end of committed data). */
  endOffset: number;
  /** Running checksum at `endOffset`. */
  checksum: WalChecksum;
  /** Database size after the last commit frame, or 0 when no frame committed. */
  commit: number;
}

/** Reads `length` bytes at `offset`; returns fewer at end of file. */
export type ReadAt = (offset: number, length: number) => Uint8Array;

/**
 * Scans frames from `startOffset` (a frame boundary whose running checksum
 * is `startChecksum`) and returns the committed ones. Stops at the first
 * frame whose salts or cumulative checksum do not match, or at end of file.
 */
export function scanWal(
  readAt: ReadAt,
  header: WalHeader,
  startOffset: number,
  startChecksum: WalChecksum,
  /** Frames ending past this offset are not read (see walIndexEnd). */
  maxEnd = Infinity,
): WalScan {
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
  const result: WalScan = {
    frames: [],
    endOffset: startOffset,
    checksum: startChecksum,
    commit: 0,
  };
  const pending: WalFrame[] = [];
  let ck = startChecksum;
  let offset = startOffset;
  const batch = Math.max(1, Math.floor((1 << 20) / frameSize));
  while (true) {
    const want = Math.min(frameSize * batch, maxEnd - offset);
    if (want < frameSize) return result;
    const buf = readAt(offset, want);
    const words = (buf.byteOffset & 3) === 0
      ? new Int32Array(buf.buffer, buf.byteOffset, buf.length >>> 2)
      : null;
    const sum = (from: number, to: number, c: WalChecksum) =>
      words
        ? walChecksumWords(header.bigEndianChecksum, words, from >>> 2, to >>> 2, c)
        : walChecksum(header.bigEndianChecksum, buf, from, to, c);
    let p = 0;
    while (p + frameSize <= buf.length) {
      if (offset + p + frameSize > maxEnd) return result;
      const pgno = u32(buf, p);
      const commit = u32(buf, p + 4);
      if (pgno === 0 || u32(buf, p + 8) !== header.salt1 || u32(buf, p + 12) !== header.salt2) {
        return result;
      }
      ck = sum(p, p + 8, ck);
      ck = sum(p + WAL_FRAME_HEADER_SIZE, p + frameSize, ck);
      if (ck.s0 !== u32(buf, p + 16) || ck.s1 !== u32(buf, p + 20)) return result;
      pending.push({ offset: offset + p, pgno, commit });
      if (commit !== 0) {
        for (const f of pending) result.frames.push(f);
        pending.length = 0;
        result.endOffset = offset + p + frameSize;
        result.checksum = ck;
        result.commit = commit;
      }
      p += frameSize;
    }
    if (buf.length < want) return result;
    offset += buf.length;
  }
}

/** The running checksum at the start of the first frame (the header's checksum). */
export function headerChecksum(h: WalHeader): WalChecksum {
  return { s0: h.checksum1, s1: h.checksum2 };
}

/** Bytes of the WAL-index header at the start of the `-shm` file (two copies of 48 bytes). */
export const WAL_INDEX_HEADER_SIZE = 96;

/**
 * The number of valid frames in the WAL (`mxFrame`) from the WAL-index
 * header SQLite keeps in the `-shm` file (native byte order, written twice;
 * the copies differ only while a writer is changing them). Null when the
 * header is missing, uninitialised or mid-update.
 */
export function walIndexFrameCount(shm: Uint8Array): number | null {
  if (shm.length < WAL_INDEX_HEADER_SIZE) return null;
  for (let i = 0; i < 48; i++) if (shm[i] !== shm[48 + i]) return null;
  if (shm[12] !== 1) return null; // isInit
  return new DataView(shm.buffer, shm.byteOffset).getUint32(16, true);
}

/**
 * Where the frames SQLite's readers see end in the WAL with header `h`: the
 * WAL-index's `mxFrame`. Frames past it are not (yet) part of the database
 * for any reader: a writer killed between writing a commit's frames and
 * publishing them leaves them there, and the next writer overwrites them
 * (unless a recovery adopts them first). Null when the index cannot say now
 * (mid-update, not initialised, or describing another WAL generation).
 */
export function walIndexEnd(shm: Uint8Array, h: WalHeader): number | null {
  const frames = walIndexFrameCount(shm);
  if (frames === null) return null;
  const dv = new DataView(shm.buffer, shm.byteOffset);
  if (dv.getUint32(32) !== h.salt1 || dv.getUint32(36) !== h.salt2) return null;
  return WAL_HEADER_SIZE + frames * (WAL_FRAME_HEADER_SIZE + h.pageSize);
}

/** Bytes of the WAL-index header and the checkpoint info after it (`nBackfill` first). */
export const WAL_INDEX_CKPT_SIZE = WAL_INDEX_HEADER_SIZE + 4;

/**
 * How many frames of the WAL with salts (`salt1`, `salt2`) a checkpoint has
 * copied into the database file (`nBackfill`, in the `-shm` file after the
 * WAL-index header), or null when the index is mid-update or describes
 * another WAL (other salts). When it equals the frames a reader's snapshot
 * holds, SQLite gives that reader read-mark 0 ("the WAL is not needed"): the
 * next writer may then restart the WAL and write over those frames while
 * the reader's transaction is still open.
 */
export function walIndexBackfilled(shm: Uint8Array, salt1: number, salt2: number): number | null {
  if (shm.length < WAL_INDEX_CKPT_SIZE || walIndexFrameCount(shm) === null) return null;
  const dv = new DataView(shm.buffer, shm.byteOffset);
  // the salts are kept as the WAL header's bytes (big-endian)
  if (dv.getUint32(32) !== salt1 || dv.getUint32(36) !== salt2) return null;
  return dv.getUint32(WAL_INDEX_HEADER_SIZE, true);
}

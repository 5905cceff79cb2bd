/**
 * LZ4 block format (compress and decompress) and the LZ4 frame format
 * (decode only, for the legacy LTX page form). Pure TypeScript, written for
 * SQLite pages: inputs of at most 64 KiB, so every match offset fits the
 * 16-bit field and one hash table of positions serves a whole block.
 */

import { pageKernel as kernel } from "./kernel.ts";
import { LZ4Error } from "./errors.ts";
import { xxHash32 } from "./xxhash32.ts";

const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MF_LIMIT = 12;
const HASH_LOG = 12;
const HASH_SIZE = 1 << HASH_LOG;
const MAX_INPUT = 1 << 16;

/** Worst-case compressed size of `n` input bytes. */
export function lz4CompressBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

// The hash table holds `generation + position`; entries below the current
// generation are stale, so no table clearing is needed between calls.
const table = new Int32Array(HASH_SIZE);
let generation = 1;

function hash4(v: number): number {
  return Math.imul(v, 2654435761) >>> (32 - HASH_LOG);
}

function read32(s: Uint8Array, i: number): number {
  return s[i] | (s[i + 1] << 8) | (s[i + 2] << 16) | (s[i + 3] << 24);
}

/** Writes the 255-run extension bytes of a length whose 4-bit field is full. */
function writeLengthTail(dst: Uint8Array, op: number, rest: number): number {
  while (rest >= 255) {
    dst[op++] = 255;
    rest -= 255;
  }
  dst[op++] = rest;
  return op;
}

/**
 * Compresses `src` (≤ 64 KiB) as one raw LZ4 block into `dst` at `dstPos`,
 * which must have room for `lz4CompressBound(src.length)` bytes. Returns the
 * number of bytes written. Runs the page kernel's WebAssembly (twice the
 * speed), which writes the same bytes as lz4CompressBlockJs.
 */
export function lz4CompressBlock(src: Uint8Array, dst: Uint8Array, dstPos = 0): number {
  if (src.length > MAX_INPUT) {
    throw new RangeError(`lz4: input of ${src.length} bytes exceeds 64 KiB`);
  }
  return kernel.compress(src, dst, dstPos) ?? lz4CompressBlockJs(src, dst, dstPos);
}

/** lz4CompressBlock in JavaScript: the reference the WebAssembly compressor is tested against. */
export function lz4CompressBlockJs(src: Uint8Array, dst: Uint8Array, dstPos = 0): number {
  const n = src.length;
  if (n > MAX_INPUT) throw new RangeError(`lz4: input of ${n} bytes exceeds 64 KiB`);
  if (generation > 0x7fff0000 - n) {
    table.fill(0);
    generation = 1;
  }
  const base = generation;
  generation += n + 1;
  let op = dstPos;
  let anchor = 0;
  let ip = 0;
  const matchLimit = n - LAST_LITERALS;
  const searchLimit = n - MF_LIMIT;
  if (n >= MF_LIMIT + 1) {
    ip = 1;
    table[hash4(read32(src, 0))] = base;
    while (ip < searchLimit) {
      // find a match, skipping faster through incompressible data
      let step = 1;
      let attempts = 1 << 6;
      let ref = -1;
      let seq = 0;
      while (ip < searchLimit) {
        seq = read32(src, ip);
        const h = hash4(seq);
        const cand = table[h] - base;
        table[h] = base + ip;
        if (cand >= 0 && ip - cand <= 0xffff && read32(src, cand) === seq) {
          ref = cand;
          break;
        }
        ip += step;
        step = attempts++ >> 6;
      }
      if (ref < 0) break;
      // extend backwards
      while (ip > anchor && ref > 0 && src[ip - 1] === src[ref - 1]) {
        ip--;
        ref--;
      }
      // extend forwards
      let mlen = MIN_MATCH;
      while (ip + mlen < matchLimit && src[ip + mlen] === src[ref + mlen]) mlen++;
      // emit sequence
      const litLen = ip - anchor;
      const tokenPos = op++;
      let token = 0;
      if (litLen >= 15) {
        token = 0xf0;
        op = writeLengthTail(dst, op, litLen - 15);
      } else {
        token = litLen << 4;
      }
      if (litLen > 0) {
        dst.set(src.subarray(anchor, ip), op);
        op += litLen;
      }
      const offset = ip - ref;
      dst[op++] = offset & 0xff;
      dst[op++] = offset >>> 8;
      const ml = mlen - MIN_MATCH;
      if (ml >= 15) {
        token |= 0x0f;
        op = writeLengthTail(dst, op, ml - 15);
      } else {
        token |= ml;
      }
      dst[tokenPos] = token;
      ip += mlen;
      anchor = ip;
      if (ip < searchLimit) {
        // prime the table with the position just before the next search
        table[hash4(read32(src, ip - 2))] = base + ip - 2;
      }
    }
  }
  // last literals
  const litLen = n - anchor;
  if (litLen >= 15) {
    dst[op++] = 0xf0;
    op = writeLengthTail(dst, op, litLen - 15);
  } else {
    dst[op++] = litLen << 4;
  }
  dst.set(src.subarray(anchor, n), op);
  op += litLen;
  return op - dstPos;
}

/**
 * Decompresses one raw LZ4 block `src[start, end)` into `dst`, which must end
 * up exactly full. Throws `LZ4Error` on any malformed input (offsets before
 * the start, overruns, a block that stops early or produces too much).
 */
export function lz4DecompressBlock(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
): void {
  const written = lz4DecompressInto(src, start, end, dst, 0);
  if (written !== dst.length) {
    throw new LZ4Error(`block decompressed to ${written} bytes, expected ${dst.length}`);
  }
}

/**
 * Decompresses a block into `dst` from `dstStart`; returns bytes written.
 * Matches may reach back to `floor` (default `dstStart`): bytes of `dst`
 * before `dstStart` are the window of a frame whose blocks depend on earlier ones.
 * (The page kernel's decompressor: the same code runs in the decoding workers.)
 */
export function lz4DecompressInto(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  dstStart: number,
  floor = dstStart,
): number {
  const n = kernel.lz4Into(src, start, end, dst, dstStart, floor);
  if (n < 0) throw new LZ4Error(kernel.lz4Problem(n));
  return n;
}

// ---- frame format (decode only) --------------------------------------------

const FRAME_MAGIC = 0x184d2204;

/** What the frame header says, and where its blocks start. */
export interface Lz4FrameHeader {
  headerLength: number;
  blockChecksums: boolean;
  contentChecksum: boolean;
  contentSize: bigint | null;
  /** Largest decompressed block: 64 KiB, 256 KiB, 1 MiB or 4 MiB. */
  blockMaxSize: number;
}

/** Parses an LZ4 frame header at `src[start..]`; returns null if more bytes are needed. */
export function parseLz4FrameHeader(src: Uint8Array, start: number): Lz4FrameHeader | null {
  if (src.length - start < 7) return null;
  const magic = (src[start] | (src[start + 1] << 8) | (src[start + 2] << 16) |
    (src[start + 3] << 24)) >>> 0;
  if (magic !== FRAME_MAGIC) {
    throw new LZ4Error(`bad frame magic 0x${magic.toString(16).padStart(8, "0")}`);
  }
  const flg = src[start + 4];
  const version = flg >>> 6;
  if (version !== 1) throw new LZ4Error(`unsupported frame version ${version}`);
  if (flg & 0x02) throw new LZ4Error("reserved frame flag bit set");
  if ((flg & 0x01) !== 0) throw new LZ4Error("dictionary frames are not supported");
  const bd = src[start + 5];
  if ((bd & 0x8f) !== 0) throw new LZ4Error("reserved block-descriptor bits set");
  const sizeCode = (bd >>> 4) & 7;
  if (sizeCode < 4) throw new LZ4Error(`invalid block maximum size code ${sizeCode}`);
  const hasContentSize = (flg & 0x08) !== 0;
  const headerLength = 4 + 2 + (hasContentSize ? 8 : 0) + 1;
  if (src.length - start < headerLength) return null;
  const hc = src[start + headerLength - 1];
  const expected = (xxHash32(src.subarray(start + 4, start + headerLength - 1), 0) >>> 8) & 0xff;
  if (hc !== expected) throw new LZ4Error("frame header checksum mismatch");
  let contentSize: bigint | null = null;
  if (hasContentSize) {
    const dv = new DataView(src.buffer, src.byteOffset + start + 6, 8);
    contentSize = dv.getBigUint64(0, true);
  }
  return {
    headerLength,
    blockChecksums: (flg & 0x10) !== 0,
    contentChecksum: (flg & 0x04) !== 0,
    contentSize,
    blockMaxSize: 1 << (8 + 2 * sizeCode),
  };
}

/**
 * Decodes one whole LZ4 frame at `src[start..end)` into `dst` (exactly
 * filled), checking the content checksum (xxHash32) when the frame has one.
 * Returns the frame's byte length, or -1 when `src` holds only part of it
 * (the caller reads more and calls again).
 */
export function lz4DecodeFrame(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
): number {
  const r = decodeFrame(src, start, end, () => dst, dst.length);
  if (!r) return -1;
  if (r.size !== dst.length) {
    throw new LZ4Error(`frame decompressed to ${r.size} bytes, expected ${dst.length}`);
  }
  return r.used;
}

/**
 * Decodes a complete LZ4 frame of any size (its content size need not be
 * stored), as Litestream v0.3 writes snapshots and WAL segments.
 */
export function lz4DecodeWholeFrame(src: Uint8Array): Uint8Array {
  let out = new Uint8Array(1 << 16);
  const r = decodeFrame(src, 0, src.length, (op, need) => {
    if (op + need > out.length) {
      const grown = new Uint8Array(Math.max(out.length * 2, op + need));
      grown.set(out.subarray(0, op));
      out = grown;
    }
    return out;
  }, Infinity);
  if (!r) throw new LZ4Error("truncated frame");
  return out.subarray(0, r.size);
}

/**
 * The frame walk shared by both decoders: `room(op, need)` returns a buffer
 * with space for `need` more bytes at `op` (blocks may refer back to earlier
 * output, so it is one contiguous buffer). `blockLimit` bounds a block's size.
 */
function decodeFrame(
  src: Uint8Array,
  start: number,
  end: number,
  room: (op: number, need: number) => Uint8Array,
  blockLimit: number,
): { used: number; size: number } | null {
  const view = src.subarray(0, end);
  const h = parseLz4FrameHeader(view, start);
  if (!h) return null;
  const maxBlock = Math.min(h.blockMaxSize, blockLimit);
  let ip = start + h.headerLength;
  let op = 0;
  let dst = room(0, 0);
  while (true) {
    if (ip + 4 > end) return null;
    const word = (src[ip] | (src[ip + 1] << 8) | (src[ip + 2] << 16) | (src[ip + 3] << 24)) >>> 0;
    ip += 4;
    if (word === 0) break;
    const stored = (word & 0x80000000) !== 0;
    const size = word & 0x7fffffff;
    if (ip + size > end) return null;
    if (stored) {
      dst = room(op, size);
      if (op + size > dst.length) throw new LZ4Error("frame content larger than expected");
      dst.set(src.subarray(ip, ip + size), op);
      op += size;
    } else {
      dst = room(op, maxBlock);
      op += lz4DecompressInto(
        src,
        ip,
        ip + size,
        dst.subarray(0, Math.min(dst.length, op + maxBlock)),
        op,
      );
    }
    ip += size;
    if (h.blockChecksums) {
      if (ip + 4 > end) return null;
      ip += 4; // block checksums are optional to verify; content checksum covers all
    }
  }
  if (h.contentChecksum) {
    if (ip + 4 > end) return null;
    const stored = (src[ip] | (src[ip + 1] << 8) | (src[ip + 2] << 16) | (src[ip + 3] << 24)) >>> 0;
    ip += 4;
    if (xxHash32(dst.subarray(0, op), 0) !== stored) {
      throw new LZ4Error("frame content checksum (xxHash32) mismatch");
    }
  }
  if (h.contentSize !== null && h.contentSize !== BigInt(op)) {
    throw new LZ4Error("frame content size field disagrees with its content");
  }
  return { used: ip - start, size: op };
}

/** Bytes an LZ4 frame of one `n`-byte block (content checksum, no block checksum) may take. */
export function lz4FrameBound(n: number): number {
  return 7 + 4 + Math.max(n, lz4CompressBound(n)) + 4 + 4;
}

/**
 * Writes `src` (at most 64 KiB) as one LZ4 frame at `dst[dstPos..]`, the way
 * Litestream v0.5.0–v0.5.15 writes each LTX page (pierrec/lz4 with 64 KiB
 * blocks): version 1, independent blocks, a content checksum (xxHash32), no
 * content size; one block, stored uncompressed when compressing does not
 * shrink it; the end mark. Returns the frame's length.
 */
export function lz4WriteFrame(src: Uint8Array, dst: Uint8Array, dstPos = 0): number {
  if (src.length > 65536) throw new LZ4Error(`a frame of one block holds at most 64 KiB`);
  let p = dstPos;
  const u32 = (v: number) => {
    dst[p] = v;
    dst[p + 1] = v >>> 8;
    dst[p + 2] = v >>> 16;
    dst[p + 3] = v >>> 24;
    p += 4;
  };
  u32(FRAME_MAGIC);
  dst[p] = 0x64; // version 01, block independence, content checksum
  dst[p + 1] = 0x40; // blocks up to 64 KiB
  dst[p + 2] = (xxHash32(dst.subarray(p, p + 2), 0) >>> 8) & 0xff;
  p += 3;
  const n = lz4CompressBlock(src, dst, p + 4);
  if (n > 0 && n < src.length) {
    u32(n);
    p += n;
  } else {
    u32((src.length | 0x80000000) >>> 0);
    dst.set(src, p);
    p += src.length;
  }
  u32(0); // end mark
  u32(xxHash32(src, 0));
  return p - dstPos;
}

/**
 * Streaming LZ4 frame decoding, one block at a time (bounded memory): the
 * form Litestream v0.3 stores snapshots and WAL segments in (frames of any
 * length, no content size, blocks of up to 4 MiB).
 */

import { LZ4Error } from "./errors.ts";
import { BufferedReader, type ByteSource } from "./io.ts";
import { lz4DecompressInto, parseLz4FrameHeader } from "./lz4.ts";
import { xxHash32 } from "./xxhash32.ts";

/** How far back a match in a dependent block may reach. */
const WINDOW = 1 << 16;
const FLAG_BLOCK_INDEPENDENCE = 0x20;
const MAX_FRAME_HEADER = 4 + 2 + 8 + 1;

function read32le(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/**
 * Decodes the LZ4 frame(s) of `src`, yielding the decompressed bytes in
 * chunks (each a fresh array the caller may keep). Block checksums and the
 * content checksum are checked when present. Throws `LZ4Error` on anything
 * malformed, on a checksum mismatch, and when the input ends before the
 * frame's end mark (a truncated file).
 */
export async function* lz4FrameChunks(src: ByteSource): AsyncGenerator<Uint8Array> {
  const r = new BufferedReader(src);
  let frames = 0;
  while (!(await r.atEnd())) {
    frames++;
    await r.ensure(MAX_FRAME_HEADER); // may be fewer at the end; the parser says if too few
    const h = parseLz4FrameHeader(r.buf.subarray(0, r.end), r.pos);
    if (!h) throw new LZ4Error("truncated frame header");
    const independent = (r.buf[r.pos + 4] & FLAG_BLOCK_INDEPENDENCE) !== 0;
    r.pos += h.headerLength;
    // hash-wasm loads only for frames that carry a content checksum (Litestream v0.3 files)
    const hasher = h.contentChecksum ? await (await import("hash-wasm")).createXXHash32(0) : null;
    const out = new Uint8Array(WINDOW + h.blockMaxSize);
    let history = 0; // bytes of earlier output kept at out[0, history) for dependent blocks
    let total = 0n;
    while (true) {
      if (!(await r.ensure(4))) throw new LZ4Error("truncated frame: no end mark");
      const word = read32le(r.buf, r.pos);
      r.pos += 4;
      if (word === 0) break;
      const stored = (word & 0x80000000) !== 0;
      const size = word & 0x7fffffff;
      if (size > h.blockMaxSize) {
        throw new LZ4Error(`block of ${size} bytes exceeds the frame's ${h.blockMaxSize}`);
      }
      const need = size + (h.blockChecksums ? 4 : 0);
      if (!(await r.ensure(need))) throw new LZ4Error("truncated frame: block cut short");
      const block = r.buf.subarray(r.pos, r.pos + size);
      if (h.blockChecksums && xxHash32(block, 0) !== read32le(r.buf, r.pos + size)) {
        throw new LZ4Error("block checksum (xxHash32) mismatch");
      }
      let n: number;
      if (stored) {
        out.set(block, history);
        n = size;
      } else {
        n = lz4DecompressInto(
          r.buf,
          r.pos,
          r.pos + size,
          out.subarray(0, history + h.blockMaxSize),
          history,
          independent ? history : 0,
        );
      }
      r.pos += need;
      const chunk = out.slice(history, history + n);
      hasher?.update(chunk);
      total += BigInt(n);
      if (!independent) {
        const keep = Math.min(WINDOW, history + n);
        out.copyWithin(0, history + n - keep, history + n);
        history = keep;
      }
      if (n > 0) yield chunk;
    }
    if (hasher) {
      if (!(await r.ensure(4))) throw new LZ4Error("truncated frame: no content checksum");
      const want = read32le(r.buf, r.pos);
      r.pos += 4;
      if (parseInt(hasher.digest("hex"), 16) !== want) {
        throw new LZ4Error("frame content checksum (xxHash32) mismatch");
      }
    }
    if (h.contentSize !== null && h.contentSize !== total) {
      throw new LZ4Error("frame content size field disagrees with its content");
    }
  }
  if (frames === 0) throw new LZ4Error("empty input: no LZ4 frame");
}

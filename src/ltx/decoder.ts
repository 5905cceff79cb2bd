/**
 * Streaming LTX decoder. Reads the current (LZ4 block) and legacy (LZ4 frame)
 * page forms, enforces every rule of spec/ltx.md "Validation", and verifies
 * the file checksum and, for snapshots, the database checksum.
 *
 * Pages come out as they are read; the file as a whole is proven good only
 * when `nextPage()` has returned null (index, trailer and checksums checked).
 * Callers that apply pages must not commit them before that.
 */

import { type Crc64, crc64Combine, crc64Update, crc64UpdateTable } from "./crc64.ts";
import {
  CHECKSUM_FLAG,
  DatabaseChecksum,
  formatChecksum,
  pageChecksumFromCrc,
} from "./checksum.ts";
import {
  LtxChecksumError,
  LtxFormatError,
  LtxNameMismatchError,
  LtxUnsupportedLayoutError,
  LZ4Error,
} from "./errors.ts";
import type { TXIDRange } from "./names.ts";
import {
  decodeHeader,
  hasChecksums,
  HEADER_SIZE,
  headerRangeProblem,
  isSnapshot,
  type LtxHeader,
  type LtxTrailer,
  PAGE_FLAG_SIZE,
  PAGE_HEADER_SIZE,
  pageNumberProblem,
  TRAILER_SIZE,
} from "./header.ts";
import { BufferedReader, type ByteSource } from "./io.ts";
import { lz4DecodeFrame, lz4DecompressBlock } from "./lz4.ts";
import { getUvarint } from "./varint.ts";

/** Buffers for page frames read as they are (see LtxDecoder.readBatch). */
export interface RawPageBatch {
  pgno: Uint32Array;
  /** Each block's offset in `src` and its length. */
  at: Int32Array;
  len: Int32Array;
  src: Uint8Array;
}

/** One decoded page. `crc` is the CRC-64 of `data` alone (feeds page checksums). */
export interface LtxPage {
  pgno: number;
  data: Uint8Array;
  crc: Crc64;
}

export interface DecoderOptions {
  /** Name used in error messages (path or replica key). */
  file?: string;
  /**
   * The TXID range the file's name (and the caller's plan) says it covers:
   * a header covering anything else is refused (a renamed or foreign file).
   */
  expect?: TXIDRange;
  /** Hears of every chunk of the file read (progress counting). */
  onBytes?: (n: number) => void;
  /** Bytes read from the source at a time (default 64 KiB). */
  readSize?: number;
}

export class LtxDecoder {
  readonly file: string;
  readonly #expect: TXIDRange | null;
  #r: BufferedReader;
  #header: LtxHeader | null = null;
  #trailer: LtxTrailer | null = null;
  #prevPgno = 0;
  #fileCrc: Crc64 = { hi: 0, lo: 0 };
  #pageSum: Crc64 = { hi: 0, lo: 0 };
  #dbSum = new DatabaseChecksum();
  #index: number[] = [];
  #done = false;
  /** Pages of raw batches read and not yet accepted. */
  #unaccepted = 0;
  readonly #frameHeader = new Uint8Array(10);

  constructor(source: ByteSource, opts: DecoderOptions = {}) {
    this.file = opts.file ?? "(stream)";
    this.#expect = opts.expect ?? null;
    this.#r = new BufferedReader(source, opts.readSize, opts.onBytes);
  }

  #fail(reason: string): never {
    throw new LtxFormatError(this.file, reason);
  }

  async #need(n: number, what: string): Promise<void> {
    if (!(await this.#r.ensure(n))) this.#fail(`short file: truncated in ${what}`);
  }

  /** Reads and validates the header (once). */
  async readHeader(): Promise<LtxHeader> {
    if (this.#header) return this.#header;
    const r = this.#r;
    if (!(await r.ensure(HEADER_SIZE))) this.#fail("short file: no complete header");
    const h = decodeHeader(r.buf.subarray(r.pos, r.pos + HEADER_SIZE), this.file);
    const mismatch = this.#expect && headerRangeProblem(h, this.#expect);
    if (mismatch) throw new LtxNameMismatchError(this.file, mismatch);
    crc64UpdateTable(this.#fileCrc, r.buf, r.pos, r.pos + HEADER_SIZE, this.#fileCrc);
    r.pos += HEADER_SIZE;
    this.#header = h;
    return h;
  }

  /** The trailer, once the whole file has been read and verified. */
  get trailer(): LtxTrailer | null {
    return this.#trailer;
  }

  /**
   * Reads the next page, or verifies the rest of the file and returns null at
   * the terminator. The page is decompressed into `into` (page-size bytes)
   * when given, else into a new array.
   */
  async nextPage(into?: Uint8Array): Promise<LtxPage | null> {
    if (this.#done) return null;
    const h = await this.readHeader();
    const r = this.#r;
    const frameOffset = r.offset;
    await this.#need(PAGE_HEADER_SIZE, "a page header");
    let p = r.pos;
    const b = r.buf;
    const pgno = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
    const flags = (b[p + 4] << 8) | b[p + 5];
    if (pgno === 0) {
      if (flags !== 0) this.#fail(`terminator with flags 0x${flags.toString(16)}`);
      crc64UpdateTable(this.#fileCrc, b, p, p + PAGE_HEADER_SIZE, this.#fileCrc);
      r.pos += PAGE_HEADER_SIZE;
      await this.#readTail();
      this.#done = true;
      return null;
    }
    if (flags !== 0 && flags !== PAGE_FLAG_SIZE) {
      if (this.#prevPgno === 0) this.#unsupportedLayout(b, p);
      this.#fail(`unknown page flags 0x${flags.toString(16)} on page ${pgno}`);
    }
    const problem = pageNumberProblem(h, pgno, this.#prevPgno);
    if (problem) this.#fail(problem);
    this.#prevPgno = pgno;

    const data = into?.length === h.pageSize ? into : new Uint8Array(h.pageSize);
    let frameLen: number;
    if (flags === PAGE_FLAG_SIZE) {
      await this.#need(PAGE_HEADER_SIZE + 4, "a page header");
      p = r.pos;
      const n = ((b[p + 6] << 24) | (r.buf[p + 7] << 16) | (r.buf[p + 8] << 8) | r.buf[p + 9]) >>>
        0;
      if (n === 0 || n > h.pageSize + Math.floor(h.pageSize / 255) + 16) {
        this.#fail(`page ${pgno} has a bad compressed size ${n}`);
      }
      crc64UpdateTable(this.#fileCrc, r.buf, p, p + 10, this.#fileCrc);
      await this.#need(10 + n, `page ${pgno}`);
      p = r.pos;
      try {
        lz4DecompressBlock(r.buf, p + 10, p + 10 + n, data);
      } catch (e) {
        if (e instanceof LZ4Error) this.#fail(`page ${pgno}: ${e.message}`);
        throw e;
      }
      frameLen = 10 + n;
    } else {
      crc64UpdateTable(this.#fileCrc, r.buf, r.pos, r.pos + PAGE_HEADER_SIZE, this.#fileCrc);
      let want = 64;
      let used: number;
      while (true) {
        const have = await r.ensure(PAGE_HEADER_SIZE + want);
        try {
          used = lz4DecodeFrame(r.buf, r.pos + PAGE_HEADER_SIZE, r.end, data);
        } catch (e) {
          if (e instanceof LZ4Error) this.#fail(`page ${pgno}: ${e.message}`);
          throw e;
        }
        if (used >= 0) break;
        if (!have) this.#fail(`short file: truncated in page ${pgno}`);
        want = Math.max(want * 2, r.available);
      }
      frameLen = PAGE_HEADER_SIZE + used;
    }
    r.pos += frameLen;
    this.#index.push(pgno, frameOffset, frameLen);

    const crc = crc64Update({ hi: 0, lo: 0 }, data);
    crc64Combine(this.#fileCrc, crc, data.length, this.#fileCrc);
    if (isSnapshot(h) && hasChecksums(h)) {
      this.#dbSum.xor(pageChecksumFromCrc(pgno, crc, data.length, this.#pageSum));
    }
    return { pgno, data, crc };
  }

  /**
   * Reads up to `into.pgno.length` page frames of the current form as they
   * are (compressed), checking what can be checked without decompressing
   * (page order, flags, sizes) and copying the blocks into `into.src`.
   * Returns the number read; 0 at the terminator (then, once every batch is
   * accepted, `finishPages()`), or -1 when the next frame is in the legacy
   * form (accept every batch, then continue with `nextPage()`). Each batch
   * must be decoded and passed to `acceptBatch`, in order.
   */
  async readBatch(into: RawPageBatch): Promise<number> {
    if (this.#done) return 0;
    const h = await this.readHeader();
    const r = this.#r;
    const max = Math.min(into.pgno.length, into.at.length, into.len.length);
    const bound = h.pageSize + Math.floor(h.pageSize / 255) + 16;
    let used = 0;
    let count = 0;
    while (count < max && used + bound <= into.src.length) {
      const frameOffset = r.offset;
      // (awaited only when the buffer runs short: a page costs no promise otherwise)
      if (r.end - r.pos < PAGE_HEADER_SIZE + 4) await this.#need(PAGE_HEADER_SIZE, "a page header");
      const b = r.buf;
      let p = r.pos;
      const pgno = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      const flags = (b[p + 4] << 8) | b[p + 5];
      if (pgno === 0) return count; // the terminator: nextPage() reads it and the rest
      if (flags !== PAGE_FLAG_SIZE) {
        if (flags === 0 && count === 0) return -1; // legacy frames: nextPage() reads them
        if (flags === 0) return count;
        if (this.#prevPgno === 0) this.#unsupportedLayout(b, p);
        this.#fail(`unknown page flags 0x${flags.toString(16)} on page ${pgno}`);
      }
      const problem = pageNumberProblem(h, pgno, this.#prevPgno);
      if (problem) this.#fail(problem);
      if (r.end - r.pos < PAGE_HEADER_SIZE + 4) {
        await this.#need(PAGE_HEADER_SIZE + 4, "a page header");
      }
      p = r.pos;
      const rb = r.buf;
      const n = ((rb[p + 6] << 24) | (rb[p + 7] << 16) | (rb[p + 8] << 8) | rb[p + 9]) >>> 0;
      if (n === 0 || n > bound) this.#fail(`page ${pgno} has a bad compressed size ${n}`);
      if (r.end - r.pos < 10 + n) await this.#need(10 + n, `page ${pgno}`);
      p = r.pos;
      into.src.set(r.buf.subarray(p + 10, p + 10 + n), used);
      into.pgno[count] = pgno;
      into.at[count] = used;
      into.len[count] = n;
      used += n;
      count++;
      this.#unaccepted++;
      this.#prevPgno = pgno;
      r.pos += 10 + n;
      this.#index.push(pgno, frameOffset, 10 + n);
    }
    return count;
  }

  /**
   * Takes the decoded pages of the last batch read (in order): their CRCs go
   * into the file checksum (after each frame's header) and, for a snapshot,
   * the database checksum. `failed` ≥ 0: that page did not decompress.
   */
  acceptBatch(
    into: RawPageBatch,
    count: number,
    crcHi: Uint32Array,
    crcLo: Uint32Array,
    failed = -1,
    reason = "",
  ): void {
    if (failed >= 0) this.#fail(`page ${into.pgno[failed]}: ${new LZ4Error(reason).message}`);
    const h = this.#header!;
    const ps = h.pageSize;
    const sums = isSnapshot(h) && hasChecksums(h);
    const frame = this.#frameHeader;
    const crc = { hi: 0, lo: 0 };
    for (let k = 0; k < count; k++) {
      const pgno = into.pgno[k];
      const n = into.len[k];
      frame[0] = pgno >>> 24;
      frame[1] = pgno >>> 16;
      frame[2] = pgno >>> 8;
      frame[3] = pgno;
      frame[4] = 0;
      frame[5] = PAGE_FLAG_SIZE;
      frame[6] = n >>> 24;
      frame[7] = n >>> 16;
      frame[8] = n >>> 8;
      frame[9] = n;
      crc64UpdateTable(this.#fileCrc, frame, 0, 10, this.#fileCrc);
      crc.hi = crcHi[k];
      crc.lo = crcLo[k];
      crc64Combine(this.#fileCrc, crc, ps, this.#fileCrc);
      if (sums) this.#dbSum.xor(pageChecksumFromCrc(pgno, crc, ps, this.#pageSum));
    }
    this.#unaccepted -= count;
  }

  /** After the batches: reads the terminator, index and trailer and verifies the whole file. */
  async finishPages(): Promise<void> {
    if (this.#unaccepted !== 0) throw new Error(`${this.#unaccepted} pages read but not accepted`);
    if ((await this.nextPage()) !== null) this.#fail("a page after the batches ended");
  }

  #unsupportedLayout(b: Uint8Array, p: number): never {
    if (b[p + 4] === 0x04 && b[p + 5] === 0x22 && b[p + 6] === 0x4d && b[p + 7] === 0x18) {
      throw new LtxUnsupportedLayoutError(
        this.file,
        "4-byte page headers with LZ4 frames (LTX v0.4, written before Litestream v0.5)",
      );
    }
    throw new LtxUnsupportedLayoutError(
      this.file,
      `page flags 0x${((b[p + 4] << 8) | b[p + 5]).toString(16)} on the first page; ` +
        "this looks like an older LTX generation (4-byte page headers, LiteFS/LTX v0.3)",
    );
  }

  async #readTail(): Promise<void> {
    const h = this.#header!;
    const r = this.#r;
    // page index: varint triples, a 0, then the u64 byte length of that part
    const indexStart = r.offset;
    const idx = this.#index;
    let k = 0;
    while (true) {
      let parsed: [number, number] | null = null;
      await r.ensure(10);
      parsed = getUvarint(r.buf, r.pos, r.end);
      if (!parsed) this.#fail("truncated or malformed page index");
      const [pgno, next] = parsed;
      crc64UpdateTable(this.#fileCrc, r.buf, r.pos, next, this.#fileCrc);
      r.pos = next;
      if (pgno === 0) break;
      const values = [pgno];
      for (let j = 0; j < 2; j++) {
        await r.ensure(10);
        const v = getUvarint(r.buf, r.pos, r.end);
        if (!v) this.#fail("truncated or malformed page index");
        crc64UpdateTable(this.#fileCrc, r.buf, r.pos, v[1], this.#fileCrc);
        r.pos = v[1];
        values.push(v[0]);
      }
      if (
        k >= idx.length || idx[k] !== values[0] || idx[k + 1] !== values[1] ||
        idx[k + 2] !== values[2]
      ) {
        this.#fail(`page index entry for page ${values[0]} does not match the page frames`);
      }
      k += 3;
    }
    if (k !== idx.length) this.#fail("page index is missing pages");
    const indexLen = r.offset - indexStart;
    await this.#need(8 + TRAILER_SIZE, "the index size and trailer");
    const dv = new DataView(r.buf.buffer, r.buf.byteOffset + r.pos, 8 + TRAILER_SIZE);
    const declared = dv.getBigUint64(0);
    if (declared !== BigInt(indexLen)) {
      this.#fail(`page index size field says ${declared}, index is ${indexLen} bytes`);
    }
    let post = dv.getBigUint64(8);
    const stored = dv.getBigUint64(16);
    crc64UpdateTable(this.#fileCrc, r.buf, r.pos, r.pos + 16, this.#fileCrc);
    r.pos += 8 + TRAILER_SIZE;
    if (!(await r.atEnd())) this.#fail("trailing bytes after the trailer");

    const computed = ((BigInt(this.#fileCrc.hi) << 32n) | BigInt(this.#fileCrc.lo)) | CHECKSUM_FLAG;
    if (computed !== stored) {
      throw new LtxChecksumError(
        this.file,
        `file checksum mismatch: stored ${formatChecksum(stored)}, computed ${
          formatChecksum(computed)
        }`,
      );
    }
    if (h.kept) {
      // Litestream's form: the trailer says nothing (as Litestream reads it); the header kept it
      if (post !== 0n) this.#fail("a file in Litestream's form with a post-apply checksum");
      post = h.kept.post;
    }
    if (!hasChecksums(h)) {
      if (post !== 0n) this.#fail("NoChecksum file with a non-zero post-apply checksum");
    } else {
      if ((post & CHECKSUM_FLAG) === 0n) this.#fail("post-apply checksum lacks the checksum flag");
      if (isSnapshot(h) && this.#dbSum.value !== post) {
        throw new LtxChecksumError(
          this.file,
          `snapshot database checksum mismatch: post-apply ${formatChecksum(post)}, pages give ${
            formatChecksum(this.#dbSum.value)
          }`,
        );
      }
    }
    if (isSnapshot(h)) {
      // completeness: every page 1..commit but the lock page
      const lock = Math.floor(0x40000000 / h.pageSize) + 1;
      const expected = h.commit >= lock ? h.commit - 1 : h.commit;
      if (idx.length / 3 !== expected) {
        this.#fail(`snapshot holds ${idx.length / 3} pages, commit ${h.commit} needs ${expected}`);
      }
    }
    this.#trailer = { postApplyChecksum: post, fileChecksum: stored };
  }

  /** Reads every remaining page (discarding it) and verifies the file. */
  async verify(): Promise<LtxTrailer> {
    while (await this.nextPage());
    return this.#trailer!;
  }

  /** Stops reading early (the file is then not verified). */
  async cancel(): Promise<void> {
    await this.#r.cancel();
  }
}

/** A fully decoded small file (tests, tools). */
export interface DecodedLtx {
  header: LtxHeader;
  pages: LtxPage[];
  trailer: LtxTrailer;
}

/** Decodes and verifies a whole file held in memory. */
export async function decodeLtx(bytes: Uint8Array, file = "(memory)"): Promise<DecodedLtx> {
  const d = new LtxDecoder([bytes], { file });
  const header = await d.readHeader();
  const pages: LtxPage[] = [];
  for (let p = await d.nextPage(); p; p = await d.nextPage()) pages.push(p);
  return { header, pages, trailer: d.trailer! };
}

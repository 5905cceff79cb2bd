/**
 * Streaming LTX encoder: header, pages in ascending order, terminator, page
 * index, trailer. Enforces every rule of spec/ltx.md and computes the file
 * checksum (and, for snapshots, the database checksum) in one CRC pass per
 * page.
 */

import { type Crc64, crc64Combine, crc64Update, crc64UpdateTable } from "./crc64.ts";
import {
  CHECKSUM_FLAG,
  DatabaseChecksum,
  formatChecksum,
  lockPageNumber,
  pageChecksumFromCrc,
} from "./checksum.ts";
import { LtxEncodeError } from "./errors.ts";
import {
  encodeHeader,
  FLAG_NO_CHECKSUM,
  hasChecksums,
  HEADER_SIZE,
  headerProblem,
  isSnapshot,
  type LtxHeader,
  type LtxTrailer,
  PAGE_FLAG_SIZE,
  PAGE_HEADER_SIZE,
  pageNumberProblem,
} from "./header.ts";
import { type ByteSink, MemorySink } from "./io.ts";
import { lz4CompressBlock, lz4CompressBound, lz4FrameBound, lz4WriteFrame } from "./lz4.ts";
import { putUvarint } from "./varint.ts";

const FLUSH_SIZE = 256 * 1024;

export interface EncoderOptions {
  /** Name used in error messages. */
  file?: string;
  /**
   * The file holds every page of the database although it does not start at
   * TXID 1 (a full copy continuing a history): `finish` checks the
   * post-apply checksum it is given against the pages, as for a snapshot.
   */
  fullCopy?: boolean;
  /**
   * Write the file in Litestream's form, which every Litestream v0.5 release
   * restores: the NoChecksum flag, zero pre- and post-apply checksums, each
   * page as flags 0 and one LZ4 frame. The file's checksums are kept in the
   * header's reserved bytes (Litestream ignores them; strata's decoder reads
   * the file as the checksummed one), so `post` (the post-apply checksum
   * `finish` will be given or compute) is needed before the first byte.
   */
  litestream?: { post: bigint };
}

/** What `finish` reports about the written file. */
export interface EncodedFile extends LtxTrailer {
  size: number;
  pageCount: number;
}

export class LtxEncoder {
  readonly header: LtxHeader;
  readonly #sink: ByteSink;
  readonly #file: string;
  readonly #lockPage: number;
  readonly #snapshot: boolean;
  readonly #allPages: boolean;
  readonly #checksums: boolean;
  /** Litestream's form: the post-apply checksum kept in the header (null: strata's form). */
  readonly #kept: bigint | null;
  readonly #litestreamForm: boolean;
  #buf: Uint8Array;
  #bufLen = 0;
  #offset = 0;
  #prevPgno = 0;
  #fileCrc: Crc64 = { hi: 0, lo: 0 };
  #pageCrc: Crc64 = { hi: 0, lo: 0 };
  #pageSum: Crc64 = { hi: 0, lo: 0 };
  #dbSum = new DatabaseChecksum();
  #index: number[] = []; // pgno, offset, length triples
  #finished = false;

  constructor(sink: ByteSink, header: LtxHeader, opts: EncoderOptions = {}) {
    this.#file = opts.file ?? "(stream)";
    const problem = headerProblem(header);
    if (problem) throw new LtxEncodeError(this.#file, problem);
    this.header = { ...header };
    this.#sink = sink;
    this.#lockPage = lockPageNumber(header.pageSize);
    this.#snapshot = isSnapshot(header);
    this.#allPages = this.#snapshot || opts.fullCopy === true;
    this.#checksums = hasChecksums(header);
    this.#buf = new Uint8Array(Math.max(FLUSH_SIZE, lz4FrameBound(header.pageSize) + 64));
    let wire = this.header;
    this.#kept = null;
    this.#litestreamForm = opts.litestream !== undefined;
    if (opts.litestream) {
      wire = { ...header, flags: header.flags | FLAG_NO_CHECKSUM, preApplyChecksum: 0n };
      if (this.#checksums) {
        this.#kept = opts.litestream.post;
        wire.kept = { pre: header.preApplyChecksum, post: this.#kept };
      }
    }
    encodeHeader(wire, this.#buf);
    this.#bufLen = HEADER_SIZE;
    crc64UpdateTable(this.#fileCrc, this.#buf, 0, HEADER_SIZE, this.#fileCrc);
  }

  /** The CRC-64 of the last page written (its bytes alone): what its page checksum is made from. */
  get lastPageCrc(): Readonly<Crc64> {
    return this.#pageCrc;
  }

  /** Bytes written so far (header included). */
  get size(): number {
    return this.#offset + this.#bufLen;
  }

  async #room(n: number): Promise<void> {
    if (this.#bufLen + n > this.#buf.length) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#bufLen === 0) return;
    const chunk = this.#buf.subarray(0, this.#bufLen);
    this.#offset += this.#bufLen;
    this.#buf = new Uint8Array(this.#buf.length);
    this.#bufLen = 0;
    await this.#sink.write(chunk);
  }

  /** Adds a page; pages must come in strictly ascending order. */
  async writePage(pgno: number, page: Uint8Array): Promise<void> {
    this.#checkPage(pgno, page.length);
    crc64Update({ hi: 0, lo: 0 }, page, 0, page.length, this.#pageCrc);
    if (this.#litestreamForm) {
      await this.#room(PAGE_HEADER_SIZE + lz4FrameBound(this.header.pageSize));
      const start = this.#bufLen;
      const n = lz4WriteFrame(page, this.#buf, start + PAGE_HEADER_SIZE);
      this.#endFrame(pgno, start, n, 0);
      return;
    }
    await this.#room(10 + lz4CompressBound(this.header.pageSize));
    const start = this.#bufLen;
    const n = lz4CompressBlock(page, this.#buf, start + 10);
    this.#endFrame(pgno, start, n);
  }

  /**
   * Adds a page compressed elsewhere (the page kernel's encodeBatch): its LZ4
   * block `block` and the CRC-64 of its bytes. The same rules as writePage.
   */
  async writeCompressed(pgno: number, block: Uint8Array, crc: Readonly<Crc64>): Promise<void> {
    if (this.#litestreamForm) {
      throw new LtxEncodeError(this.#file, "Litestream's form takes whole pages (writePage)");
    }
    this.#checkPage(pgno, this.header.pageSize);
    const bound = lz4CompressBound(this.header.pageSize);
    if (block.length === 0 || block.length > bound) {
      throw new LtxEncodeError(this.#file, `page ${pgno}: a block of ${block.length} bytes`);
    }
    await this.#room(10 + block.length);
    const start = this.#bufLen;
    this.#buf.set(block, start + 10);
    this.#pageCrc.hi = crc.hi;
    this.#pageCrc.lo = crc.lo;
    this.#endFrame(pgno, start, block.length);
  }

  #checkPage(pgno: number, length: number): void {
    if (this.#finished) throw new LtxEncodeError(this.#file, "page written after finish");
    const h = this.header;
    if (!Number.isInteger(pgno) || pgno < 1) {
      throw new LtxEncodeError(this.#file, `bad page number ${pgno}`);
    }
    if (length !== h.pageSize) {
      throw new LtxEncodeError(
        this.#file,
        `page ${pgno} is ${length} bytes, page size is ${h.pageSize}`,
      );
    }
    const problem = pageNumberProblem(h, pgno, this.#prevPgno);
    if (problem) throw new LtxEncodeError(this.#file, problem);
    if (this.#snapshot) {
      let expected = this.#prevPgno + 1;
      if (expected === this.#lockPage) expected++;
      if (pgno !== expected) {
        throw new LtxEncodeError(this.#file, `snapshot is missing page ${expected}`);
      }
    }
    this.#prevPgno = pgno;
  }

  /**
   * The frame at `start` holds page `pgno` (CRC in #pageCrc) as an `n`-byte
   * LZ4 block after a size (flags PAGE_FLAG_SIZE), or an `n`-byte LZ4 frame
   * (flags 0, Litestream's form): its header, index entry and checksums.
   */
  #endFrame(pgno: number, start: number, n: number, flags = PAGE_FLAG_SIZE): void {
    const buf = this.#buf;
    buf[start] = pgno >>> 24;
    buf[start + 1] = pgno >>> 16;
    buf[start + 2] = pgno >>> 8;
    buf[start + 3] = pgno;
    buf[start + 4] = 0;
    buf[start + 5] = flags;
    const head = flags === PAGE_FLAG_SIZE ? 10 : PAGE_HEADER_SIZE;
    if (flags === PAGE_FLAG_SIZE) {
      buf[start + 6] = n >>> 24;
      buf[start + 7] = n >>> 16;
      buf[start + 8] = n >>> 8;
      buf[start + 9] = n;
    }
    const frameLen = head + n;
    this.#bufLen += frameLen;
    this.#index.push(pgno, this.#offset + start, frameLen);
    // file checksum: page header (and size), then the uncompressed page
    const ps = this.header.pageSize;
    crc64UpdateTable(this.#fileCrc, buf, start, start + head, this.#fileCrc);
    crc64Combine(this.#fileCrc, this.#pageCrc, ps, this.#fileCrc);
    if (this.#allPages && this.#checksums) {
      this.#dbSum.xor(pageChecksumFromCrc(pgno, this.#pageCrc, ps, this.#pageSum));
    }
  }

  /**
   * Writes terminator, index and trailer and flushes. For an incremental file
   * with checksums, `postApplyChecksum` is required; for a snapshot it is
   * computed from the pages and, when given, must agree.
   */
  async finish(postApplyChecksum?: bigint): Promise<EncodedFile> {
    if (this.#finished) throw new LtxEncodeError(this.#file, "finish called twice");
    const h = this.header;
    if (this.#snapshot) {
      const expectedLast = h.commit === this.#lockPage ? h.commit - 1 : h.commit;
      if (this.#prevPgno !== expectedLast) {
        throw new LtxEncodeError(
          this.#file,
          `snapshot has pages up to ${this.#prevPgno}, commit is ${h.commit}`,
        );
      }
    }
    let post: bigint;
    if (!this.#checksums) {
      if (postApplyChecksum !== undefined && postApplyChecksum !== 0n) {
        throw new LtxEncodeError(this.#file, "NoChecksum file with a post-apply checksum");
      }
      post = 0n;
    } else if (this.#snapshot) {
      post = this.#dbSum.value;
      if (postApplyChecksum !== undefined && postApplyChecksum !== post) {
        throw new LtxEncodeError(
          this.#file,
          `snapshot pages have checksum ${formatChecksum(post)}, caller expected ${
            formatChecksum(postApplyChecksum)
          }`,
        );
      }
    } else {
      if (postApplyChecksum === undefined || (postApplyChecksum & CHECKSUM_FLAG) === 0n) {
        throw new LtxEncodeError(this.#file, "post-apply checksum missing or without the flag");
      }
      post = postApplyChecksum;
      if (this.#allPages && post !== this.#dbSum.value) {
        throw new LtxEncodeError(
          this.#file,
          `full copy pages have checksum ${formatChecksum(this.#dbSum.value)}, caller expected ${
            formatChecksum(post)
          }`,
        );
      }
    }
    if (this.#kept !== null && post !== this.#kept) {
      throw new LtxEncodeError(
        this.#file,
        `post-apply checksum ${formatChecksum(post)} is not the one kept in the header (${
          formatChecksum(this.#kept)
        })`,
      );
    }
    this.#finished = true;
    const wirePost = this.#litestreamForm ? 0n : post;

    // terminator + index
    const idx = this.#index;
    const indexBytes = new Uint8Array(idx.length / 3 * 24 + 1 + 8);
    let p = 0;
    for (let i = 0; i < idx.length; i += 3) {
      p = putUvarint(indexBytes, p, idx[i]);
      p = putUvarint(indexBytes, p, idx[i + 1]);
      p = putUvarint(indexBytes, p, idx[i + 2]);
    }
    indexBytes[p++] = 0;
    new DataView(indexBytes.buffer).setBigUint64(p, BigInt(p));
    p += 8;
    const tail = new Uint8Array(6 + p + 16);
    tail.set(indexBytes.subarray(0, p), 6);
    const dv = new DataView(tail.buffer);
    dv.setBigUint64(6 + p, wirePost);
    crc64UpdateTable(this.#fileCrc, tail, 0, 6 + p + 8, this.#fileCrc);
    const fileChecksum = ((BigInt(this.#fileCrc.hi) << 32n) | BigInt(this.#fileCrc.lo)) |
      CHECKSUM_FLAG;
    dv.setBigUint64(6 + p + 8, fileChecksum);
    await this.#room(tail.length);
    if (tail.length > this.#buf.length - this.#bufLen) {
      await this.#flush();
      this.#offset += tail.length;
      await this.#sink.write(tail);
    } else {
      this.#buf.set(tail, this.#bufLen);
      this.#bufLen += tail.length;
      await this.#flush();
    }
    return {
      postApplyChecksum: post,
      fileChecksum,
      size: this.#offset,
      pageCount: idx.length / 3,
    };
  }
}

/** Encodes a whole file in memory (small files, tests). */
export async function encodeLtx(
  header: LtxHeader,
  pages: Iterable<{ pgno: number; data: Uint8Array }>,
  postApplyChecksum?: bigint,
): Promise<Uint8Array> {
  const sink = new MemorySink();
  const enc = new LtxEncoder(sink, header);
  for (const p of pages) await enc.writePage(p.pgno, p.data);
  await enc.finish(postApplyChecksum);
  return sink.bytes();
}

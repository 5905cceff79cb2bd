/**
 * Random access to one page of an LTX file through its page index, using
 * ranged reads only: header, index size, index, then the one frame.
 */

import { LtxFormatError, LZ4Error } from "./errors.ts";
import {
  decodeHeader,
  HEADER_SIZE,
  type LtxHeader,
  PAGE_FLAG_SIZE,
  TRAILER_SIZE,
} from "./header.ts";
import { lz4DecodeFrame, lz4DecompressBlock } from "./lz4.ts";
import { getUvarint } from "./varint.ts";

/** Reads `length` bytes at `offset` of one file (a file handle, an HTTP range request…). */
export type RangeReader = (offset: number, length: number) => Promise<Uint8Array>;

export interface PageIndexEntry {
  offset: number;
  size: number;
}

export interface LtxIndex {
  header: LtxHeader;
  pages: Map<number, PageIndexEntry>;
}

/** Reads the header and page index of a file of `fileSize` bytes. */
export async function readLtxIndex(
  read: RangeReader,
  fileSize: number,
  file: string,
): Promise<LtxIndex> {
  if (fileSize < HEADER_SIZE + 6 + 1 + 8 + TRAILER_SIZE) {
    throw new LtxFormatError(file, "short file: smaller than an empty LTX file");
  }
  const header = decodeHeader(await read(0, HEADER_SIZE), file);
  const sizeBytes = await read(fileSize - TRAILER_SIZE - 8, 8);
  const indexLen = new DataView(sizeBytes.buffer, sizeBytes.byteOffset, 8).getBigUint64(0);
  const indexStart = fileSize - TRAILER_SIZE - 8 - Number(indexLen);
  if (indexLen < 1n || indexStart < HEADER_SIZE + 6) {
    throw new LtxFormatError(file, `page index size ${indexLen} does not fit the file`);
  }
  const idx = await read(indexStart, Number(indexLen));
  const pages = new Map<number, PageIndexEntry>();
  let p = 0;
  while (true) {
    const a = getUvarint(idx, p, idx.length);
    if (!a) throw new LtxFormatError(file, "truncated or malformed page index");
    p = a[1];
    if (a[0] === 0) break;
    const b = getUvarint(idx, p, idx.length);
    const c = b && getUvarint(idx, b[1], idx.length);
    if (!b || !c) throw new LtxFormatError(file, "truncated or malformed page index");
    p = c[1];
    if (b[0] < HEADER_SIZE || b[0] + c[0] > indexStart) {
      throw new LtxFormatError(
        file,
        `page index entry for page ${a[0]} points outside the page block`,
      );
    }
    pages.set(a[0], { offset: b[0], size: c[0] });
  }
  if (p !== idx.length) {
    throw new LtxFormatError(file, "page index size does not match its entries");
  }
  return { header, pages };
}

/** Reads one page through the index, or returns null when the file does not hold it. */
export async function readLtxPage(
  read: RangeReader,
  index: LtxIndex,
  pgno: number,
  file: string,
): Promise<Uint8Array | null> {
  const e = index.pages.get(pgno);
  if (!e) return null;
  const frame = await read(e.offset, e.size);
  const got = ((frame[0] << 24) | (frame[1] << 16) | (frame[2] << 8) | frame[3]) >>> 0;
  if (got !== pgno) {
    throw new LtxFormatError(
      file,
      `page index says page ${pgno} is at ${e.offset}, found page ${got}`,
    );
  }
  const flags = (frame[4] << 8) | frame[5];
  const page = new Uint8Array(index.header.pageSize);
  try {
    if (flags === PAGE_FLAG_SIZE) {
      const n = ((frame[6] << 24) | (frame[7] << 16) | (frame[8] << 8) | frame[9]) >>> 0;
      if (10 + n !== frame.length) throw new LZ4Error("frame length disagrees with the index");
      lz4DecompressBlock(frame, 10, frame.length, page);
    } else if (flags === 0) {
      if (lz4DecodeFrame(frame, 6, frame.length, page) !== frame.length - 6) {
        throw new LZ4Error("frame length disagrees with the index");
      }
    } else {
      throw new LZ4Error(`unknown page flags 0x${flags.toString(16)}`);
    }
  } catch (err) {
    if (err instanceof LZ4Error) throw new LtxFormatError(file, `page ${pgno}: ${err.message}`);
    throw err;
  }
  return page;
}

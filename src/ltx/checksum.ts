/**
 * Page and database checksums (spec/ltx.md "Checksums"). A checksum is a
 * 64-bit value with bit 63 set (the flag); it travels as `bigint` outside hot
 * loops.
 */

import { type Crc64, crc64Combine, crc64Update, crc64UpdateTable } from "./crc64.ts";

export const CHECKSUM_FLAG = 0x8000000000000000n;
const FLAG_HI = 0x80000000;

/** The page holding byte offset 1 GiB; it never appears in a file. */
export function lockPageNumber(pageSize: number): number {
  return Math.floor(0x40000000 / pageSize) + 1;
}

const pgnoBytes = new Uint8Array(4);
const pgnoCrc: Crc64 = { hi: 0, lo: 0 };

/**
 * The page checksum as (hi, lo) halves, from the CRC of the page bytes alone
 * (so one CRC pass over a page can also feed the file checksum).
 */
export function pageChecksumFromCrc(
  pgno: number,
  pageCrc: Crc64,
  pageSize: number,
  out: Crc64,
): Crc64 {
  pgnoBytes[0] = pgno >>> 24;
  pgnoBytes[1] = pgno >>> 16;
  pgnoBytes[2] = pgno >>> 8;
  pgnoBytes[3] = pgno;
  pgnoCrc.hi = 0;
  pgnoCrc.lo = 0;
  crc64UpdateTable(pgnoCrc, pgnoBytes, 0, 4, pgnoCrc);
  crc64Combine(pgnoCrc, pageCrc, pageSize, out);
  out.hi = (out.hi | FLAG_HI) >>> 0;
  return out;
}

/** flag | crc64(pgno as u32 BE ‖ page). */
export function pageChecksum(pgno: number, page: Uint8Array): bigint {
  const c = crc64Update({ hi: 0, lo: 0 }, page);
  const out = pageChecksumFromCrc(pgno, c, page.length, { hi: 0, lo: 0 });
  return (BigInt(out.hi) << 32n) | BigInt(out.lo);
}

/**
 * A rolling database checksum: flag | XOR of page checksums of pages
 * 1..commit. Kept as two 32-bit halves; XOR makes it order-free and
 * incrementally updatable.
 */
export class DatabaseChecksum {
  #hi = 0;
  #lo = 0;

  constructor(initial: bigint = CHECKSUM_FLAG) {
    this.set(initial);
  }

  set(value: bigint): void {
    this.#hi = Number((value >> 32n) & 0x7fffffffn);
    this.#lo = Number(value & 0xffffffffn);
  }

  /** XORs a page checksum (given as halves) in or out: both are the same operation. */
  xor(c: Crc64): void {
    this.#hi = (this.#hi ^ c.hi) & 0x7fffffff;
    this.#lo = (this.#lo ^ c.lo) >>> 0;
  }

  /** XORs a page checksum (bigint) in or out. */
  xorBig(c: bigint): void {
    this.#hi = (this.#hi ^ Number((c >> 32n) & 0x7fffffffn)) & 0x7fffffff;
    this.#lo = (this.#lo ^ Number(c & 0xffffffffn)) >>> 0;
  }

  get value(): bigint {
    return ((BigInt(this.#hi) | 0x80000000n) << 32n) | BigInt(this.#lo);
  }
}

/** Database checksum of a sequence of whole pages (page 1 first). */
export function databaseChecksumOfPages(pages: Iterable<Uint8Array>, pageSize: number): bigint {
  const sum = new DatabaseChecksum();
  const lock = lockPageNumber(pageSize);
  let pgno = 0;
  for (const page of pages) {
    pgno++;
    if (pgno === lock) continue;
    sum.xorBig(pageChecksum(pgno, page));
  }
  return sum.value;
}

export function formatChecksum(c: bigint): string {
  return c.toString(16).padStart(16, "0");
}

/**
 * Per-page checksums kept as two 32-bit halves (indexed by page number),
 * grown by doubling so that index `n - 1` fits; the same arrays when they do.
 */
export function growPageChecksums(
  hi: Uint32Array<ArrayBuffer>,
  lo: Uint32Array<ArrayBuffer>,
  n: number,
): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] {
  if (n <= hi.length) return [hi, lo];
  const size = Math.max(n, hi.length * 2, 1024);
  const h = new Uint32Array(size);
  const l = new Uint32Array(size);
  h.set(hi);
  l.set(lo);
  return [h, l];
}

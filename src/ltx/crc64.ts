/**
 * CRC-64 with the ISO polynomial, bit-compatible with Go's `hash/crc64.ISO`
 * (reflected polynomial 0xD800000000000000, initial value and final XOR all
 * ones). Values travel as two unsigned 32-bit halves in hot loops and as
 * `bigint` at the edges; JavaScript numbers never hold a 64-bit value.
 *
 * The table-driven loop processes 8 bytes per step (slicing-by-8). `crc64Combine`
 * computes crc(A‖B) from crc(A), crc(B) and len(B) so one pass over a page can
 * serve several checksums.
 */

import { pageKernel } from "./kernel.ts";

/** A CRC-64 value as two unsigned 32-bit halves. */
export interface Crc64 {
  hi: number;
  lo: number;
}

/** The CRC of the empty input. */
export const CRC64_EMPTY: Readonly<Crc64> = Object.freeze({ hi: 0, lo: 0 });

/**
 * Continues a finalized CRC (as Go's `crc64.Update`) over `data[start, end)`.
 * Returns the new finalized value in `out` (which may be `prev`).
 *
 * Long runs go through the page kernel's WebAssembly CRC-64 (page_kernel.wat;
 * about 1.4 times the JavaScript loop here) and are joined to
 * `prev` with `crc64Combine`; short runs use the table loop directly.
 */
export function crc64Update(
  prev: Crc64,
  data: Uint8Array,
  start = 0,
  end = data.length,
  out: Crc64 = { hi: 0, lo: 0 },
): Crc64 {
  const len = end - start;
  if (len < WASM_THRESHOLD) return crc64UpdateTable(prev, data, start, end, out);
  const c = { hi: 0, lo: 0 };
  pageKernel.crc64(data, start, end, c);
  if (prev.hi === 0 && prev.lo === 0) {
    out.hi = c.hi;
    out.lo = c.lo;
    return out;
  }
  return crc64Combine(prev, c, len, out);
}

const WASM_THRESHOLD = 512;

/** The table-driven loop (slicing-by-8 on 32-bit halves, the page kernel's JavaScript). */
export function crc64UpdateTable(
  prev: Crc64,
  data: Uint8Array,
  start = 0,
  end = data.length,
  out: Crc64 = { hi: 0, lo: 0 },
): Crc64 {
  return pageKernel.crcUpdate(prev, data, start, end, out);
}

/** CRC-64/ISO of `data` as a bigint. */
export function crc64(data: Uint8Array): bigint {
  return crc64ToBigInt(crc64Update(CRC64_EMPTY, data));
}

export function crc64ToBigInt(c: Crc64): bigint {
  return (BigInt(c.hi >>> 0) << 32n) | BigInt(c.lo >>> 0);
}

export function crc64FromBigInt(v: bigint): Crc64 {
  return { hi: Number((v >> 32n) & 0xffffffffn), lo: Number(v & 0xffffffffn) };
}

// ---- combination ---------------------------------------------------------
//
// crc(A‖B) = shift(crc(A), len(B)) ^ crc(B), where shift multiplies the
// (un-finalized) register by x^(8·len) mod P. Because init and final XOR are
// both all ones these cancel exactly as in zlib's crc32_combine. The shift is
// a linear map on 64 bits; we cache it per length as 8 byte-tables.

interface ShiftOperator {
  hi: Uint32Array; // 8 × 256
  lo: Uint32Array;
}

const shiftCache = new Map<number, ShiftOperator>();

/** Multiplies two polynomials mod P (both in reflected bit order) as bigints. */
function gfMultiply(a: bigint, b: bigint): bigint {
  // reflected representation: bit 63 is x^0.
  let product = 0n;
  const poly = 0xd800000000000000n;
  for (let i = 0; i < 64; i++) {
    if ((b >> BigInt(63 - i)) & 1n) product ^= a;
    // a *= x
    a = (a & 1n) ? (a >> 1n) ^ poly : a >> 1n;
  }
  return product;
}

/** x^(8·n) mod P in reflected representation. */
function xPow8n(n: number): bigint {
  let result = 1n << 63n; // x^0
  let square = 1n << 55n; // x^8
  while (n > 0) {
    if (n & 1) result = gfMultiply(result, square);
    square = gfMultiply(square, square);
    n >>>= 1;
  }
  return result;
}

function shiftOperator(len: number): ShiftOperator {
  let op = shiftCache.get(len);
  if (op) return op;
  const factor = xPow8n(len);
  // The shift is linear over GF(2): multiply the 64 one-bit inputs once, then build each byte
  // table entry as the XOR of the entry without its lowest bit and that bit's image.
  const bitHi = new Uint32Array(64);
  const bitLo = new Uint32Array(64);
  for (let bit = 0; bit < 64; bit++) {
    const r = gfMultiply(1n << BigInt(bit), factor);
    bitHi[bit] = Number((r >> 32n) & 0xffffffffn);
    bitLo[bit] = Number(r & 0xffffffffn);
  }
  const hi = new Uint32Array(8 * 256);
  const lo = new Uint32Array(8 * 256);
  for (let byte = 0; byte < 8; byte++) {
    const base = byte * 256;
    for (let v = 1; v < 256; v++) {
      const low = 31 - Math.clz32(v & -v);
      const rest = v & (v - 1);
      hi[base + v] = (hi[base + rest] ^ bitHi[8 * byte + low]) >>> 0;
      lo[base + v] = (lo[base + rest] ^ bitLo[8 * byte + low]) >>> 0;
    }
  }
  op = { hi, lo };
  if (shiftCache.size > 64) shiftCache.clear();
  shiftCache.set(len, op);
  return op;
}

/** crc(A‖B) from crc(A), crc(B) and the byte length of B. */
export function crc64Combine(
  a: Crc64,
  b: Crc64,
  lenB: number,
  out: Crc64 = { hi: 0, lo: 0 },
): Crc64 {
  // With init and final XOR both all ones, the finalized values combine as
  // crc(A‖B) = shift_len(B)(crc(A)) ^ crc(B): the two complements cancel.
  if (lenB === 0) {
    out.hi = a.hi;
    out.lo = a.lo;
    return out;
  }
  const op = shiftOperator(lenB);
  const H = op.hi;
  const L = op.lo;
  const alo = a.lo;
  const ahi = a.hi;
  const i0 = alo & 0xff;
  const i1 = 256 + ((alo >>> 8) & 0xff);
  const i2 = 512 + ((alo >>> 16) & 0xff);
  const i3 = 768 + (alo >>> 24);
  const i4 = 1024 + (ahi & 0xff);
  const i5 = 1280 + ((ahi >>> 8) & 0xff);
  const i6 = 1536 + ((ahi >>> 16) & 0xff);
  const i7 = 1792 + (ahi >>> 24);
  out.hi = (H[i0] ^ H[i1] ^ H[i2] ^ H[i3] ^ H[i4] ^ H[i5] ^ H[i6] ^ H[i7] ^ b.hi) >>> 0;
  out.lo = (L[i0] ^ L[i1] ^ L[i2] ^ L[i3] ^ L[i4] ^ L[i5] ^ L[i6] ^ L[i7] ^ b.lo) >>> 0;
  return out;
}

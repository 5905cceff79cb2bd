/**
 * The CPU-bound part of reading LTX pages, over a batch of pages at a time:
 * LZ4 block decompression and the CRC-64 (ISO) of each decompressed page.
 *
 * `makePageKernel` is self-contained on purpose (it refers to nothing
 * outside its own body): the same function runs on the calling thread and,
 * turned into source text, as the body of each worker of a `PagePool`
 * (page_pool.ts). That is what keeps workers inside the single binary: no
 * worker file to find or embed.
 */

/** One batch: compressed frames' bodies and where each page's block lies. */
export interface PageBatchInput {
  pageSize: number;
  /** The compressed blocks, back to back (or with gaps: only `at`/`len` are read). */
  src: Uint8Array;
  /** Per page: the block's offset in `src` and its length. */
  at: Int32Array;
  len: Int32Array;
  /** Where the pages go: `count × pageSize` bytes. */
  out: Uint8Array;
}

/** One batch to encode: `count` pages back to back in `src`; block k goes to `out` at k × bound. */
export interface EncodeBatchInput {
  pageSize: number;
  count: number;
  src: Uint8Array;
  out: Uint8Array;
}

/** Per page: its block's length and the CRC-64 halves of its bytes. */
export interface EncodeBatchResult {
  lens: Int32Array;
  crcHi: Uint32Array;
  crcLo: Uint32Array;
}

/** Per page: CRC-64 halves of its bytes; `failed` is the first page that did not decode (-1: none). */
export interface PageBatchResult {
  crcHi: Uint32Array;
  crcLo: Uint32Array;
  failed: number;
  reason: string;
}

export interface PageKernel {
  /** Decompresses every page of the batch into `out` and takes its CRC. */
  decodeBatch(b: PageBatchInput): PageBatchResult;
  /** Compresses every page of the batch and takes its CRC (WebAssembly only: null without). */
  encodeBatch(b: EncodeBatchInput): EncodeBatchResult | null;
  /**
   * Decompresses one raw LZ4 block `src[start, end)` into `dst` from
   * `dstStart` (matches may reach back to `floor`); returns bytes written,
   * or a negative code on malformed input (see `lz4Problem`).
   */
  lz4Into(
    src: Uint8Array,
    start: number,
    end: number,
    dst: Uint8Array,
    dstStart: number,
    floor: number,
  ): number;
  /** What a negative result of `lz4Into` means. */
  lz4Problem(code: number): string;
  /**
   * LZ4-compresses `src` (at most 64 KiB) into `dst` at `dstPos` and returns
   * the block's length; null when the kernel has no WebAssembly.
   */
  compress(src: Uint8Array, dst: Uint8Array, dstPos: number): number | null;
  /**
   * Continues the finalized CRC-64 `prev` over `data[start, end)` into `out`
   * (JavaScript, slicing-by-8: for short runs, where a WebAssembly call costs more).
   */
  crcUpdate(
    prev: { hi: number; lo: number },
    data: Uint8Array,
    start: number,
    end: number,
    out: { hi: number; lo: number },
  ): { hi: number; lo: number };
  /** The CRC-64 of `data[start, end)` from the empty CRC, into `out` (halves). */
  crc64(data: Uint8Array, start: number, end: number, out: { hi: number; lo: number }): void;
}

/**
 * The kernel; with `wasmBase64` (PAGE_KERNEL_WASM) its batches run in
 * WebAssembly, one call per batch, and in JavaScript otherwise.
 */
export function makePageKernel(wasmBase64?: string): PageKernel {
  // ---- CRC-64/ISO, slicing-by-8 on 32-bit halves (reflected poly 0xD800000000000000)
  const T_HI = new Uint32Array(8 * 256);
  const T_LO = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let hi = 0;
    let lo = i;
    for (let b = 0; b < 8; b++) {
      const carry = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (carry) hi = (hi ^ 0xd8000000) >>> 0;
    }
    T_HI[i] = hi;
    T_LO[i] = lo;
  }
  for (let t = 1; t < 8; t++) {
    for (let i = 0; i < 256; i++) {
      const phi = T_HI[(t - 1) * 256 + i];
      const plo = T_LO[(t - 1) * 256 + i];
      const idx = plo & 0xff;
      T_HI[t * 256 + i] = ((phi >>> 8) ^ T_HI[idx]) >>> 0;
      T_LO[t * 256 + i] = ((((plo >>> 8) | ((phi & 0xff) << 24)) >>> 0) ^ T_LO[idx]) >>> 0;
    }
  }

  /** Continues the finalized CRC `prev` over `d[start, end)` into `out` (as Go's crc64.Update). */
  function crcUpdate(
    prev: { hi: number; lo: number },
    d: Uint8Array,
    start: number,
    end: number,
    out: { hi: number; lo: number },
  ): { hi: number; lo: number } {
    let h = ~prev.hi >>> 0;
    let l = ~prev.lo >>> 0;
    let i = start;
    const end8 = end - ((end - i) & 7);
    while (i < end8) {
      const a = (l ^ (d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24))) >>> 0;
      const b = (h ^ (d[i + 4] | (d[i + 5] << 8) | (d[i + 6] << 16) | (d[i + 7] << 24))) >>> 0;
      const i7 = 1792 + (a & 0xff);
      const i6 = 1536 + ((a >>> 8) & 0xff);
      const i5 = 1280 + ((a >>> 16) & 0xff);
      const i4 = 1024 + (a >>> 24);
      const i3 = 768 + (b & 0xff);
      const i2 = 512 + ((b >>> 8) & 0xff);
      const i1 = 256 + ((b >>> 16) & 0xff);
      const i0 = b >>> 24;
      h = T_HI[i7] ^ T_HI[i6] ^ T_HI[i5] ^ T_HI[i4] ^ T_HI[i3] ^ T_HI[i2] ^ T_HI[i1] ^ T_HI[i0];
      l = T_LO[i7] ^ T_LO[i6] ^ T_LO[i5] ^ T_LO[i4] ^ T_LO[i3] ^ T_LO[i2] ^ T_LO[i1] ^ T_LO[i0];
      i += 8;
    }
    while (i < end) {
      const idx = (l ^ d[i]) & 0xff;
      l = ((l >>> 8) | (h << 24)) ^ T_LO[idx];
      h = (h >>> 8) ^ T_HI[idx];
      i++;
    }
    out.hi = ~h >>> 0;
    out.lo = ~l >>> 0;
    return out;
  }

  const EMPTY = { hi: 0, lo: 0 };
  const one = { hi: 0, lo: 0 };

  // ---- LZ4 block decompression
  const PROBLEMS = [
    "",
    "empty block",
    "truncated literal length",
    "literals run past the end of the block",
    "literals overflow the output",
    "truncated match offset",
    "invalid match offset",
    "truncated match length",
    "match overflows the output",
  ];

  function lz4Into(
    src: Uint8Array,
    start: number,
    end: number,
    dst: Uint8Array,
    dstStart: number,
    floor: number,
  ): number {
    let ip = start;
    let op = dstStart;
    const dstEnd = dst.length;
    if (ip >= end) return -1;
    while (true) {
      const token = src[ip++];
      let litLen = token >>> 4;
      if (litLen === 15) {
        let b: number;
        do {
          if (ip >= end) return -2;
          b = src[ip++];
          litLen += b;
        } while (b === 255);
      }
      if (litLen > 0) {
        if (ip + litLen > end) return -3;
        if (op + litLen > dstEnd) return -4;
        if (litLen < 16) {
          for (let k = 0; k < litLen; k++) dst[op + k] = src[ip + k];
        } else {
          dst.set(src.subarray(ip, ip + litLen), op);
        }
        ip += litLen;
        op += litLen;
      }
      if (ip === end) break; // last sequence: literals only
      if (ip + 2 > end) return -5;
      const offset = src[ip] | (src[ip + 1] << 8);
      ip += 2;
      if (offset === 0 || offset > op - floor) return -6;
      let mlen = token & 0x0f;
      if (mlen === 15) {
        let b: number;
        do {
          if (ip >= end) return -7;
          b = src[ip++];
          mlen += b;
        } while (b === 255);
      }
      mlen += 4;
      if (op + mlen > dstEnd) return -8;
      let ref = op - offset;
      if (offset >= mlen && mlen > 32) {
        dst.copyWithin(op, ref, ref + mlen);
        op += mlen;
      } else {
        const stop = op + mlen;
        while (op < stop) dst[op++] = dst[ref++];
      }
    }
    return op - dstStart;
  }

  function decodeBatch(b: PageBatchInput): PageBatchResult {
    const n = b.at.length;
    const ps = b.pageSize;
    const crcHi = new Uint32Array(n);
    const crcLo = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      const page = b.out.subarray(k * ps, (k + 1) * ps);
      const got = lz4Into(b.src, b.at[k], b.at[k] + b.len[k], page, 0, 0);
      if (got !== ps) {
        const reason = got < 0
          ? PROBLEMS[-got]
          : `block decompressed to ${got} bytes, expected ${ps}`;
        return { crcHi, crcLo, failed: k, reason };
      }
      crcUpdate(EMPTY, page, 0, ps, one);
      crcHi[k] = one.hi;
      crcLo[k] = one.lo;
    }
    return { crcHi, crcLo, failed: -1, reason: "" };
  }

  // ---- the same batch in WebAssembly (page_kernel.wat), when given
  interface WasmExports {
    memory: WebAssembly.Memory;
    init(): void;
    crc64To(p: number, len: number, out: number): void;
    lz4Compress(src: number, n: number, dst: number): number;
    encodeBatch(
      n: number,
      src: number,
      out: number,
      ps: number,
      bound: number,
      lens: number,
      crc: number,
    ): number;
    decodeBatch(
      n: number,
      at: number,
      len: number,
      src: number,
      out: number,
      ps: number,
      crc: number,
    ): number;
  }
  let wasm: WasmExports | null = null;
  if (wasmBase64) {
    const bin = atob(wasmBase64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    wasm = new WebAssembly.Instance(new WebAssembly.Module(bytes))
      .exports as unknown as WasmExports;
    wasm.init();
  }
  const ERROR_AT = 16384;
  const BATCH_AT = 32832;

  function decodeBatchWasm(w: WasmExports, b: PageBatchInput): PageBatchResult {
    const n = b.at.length;
    const ps = b.pageSize;
    let srcLen = 0;
    for (let k = 0; k < n; k++) srcLen = Math.max(srcLen, b.at[k] + b.len[k]);
    const at = BATCH_AT;
    const len = at + 4 * n;
    const crcAt = (len + 4 * n + 7) & ~7;
    const src = crcAt + 8 * n;
    const out = (src + srcLen + 7) & ~7;
    const need = out + n * ps;
    if (need > w.memory.buffer.byteLength) {
      w.memory.grow(Math.ceil((need - w.memory.buffer.byteLength) / 65536));
    }
    const mem = w.memory.buffer;
    new Int32Array(mem, at, n).set(b.at);
    new Int32Array(mem, len, n).set(b.len);
    new Uint8Array(mem, src, srcLen).set(b.src.subarray(0, srcLen));
    const failed = w.decodeBatch(n, at, len, src, out, ps, crcAt);
    const done = failed < 0 ? n : failed;
    b.out.set(new Uint8Array(mem, out, done * ps));
    const crcs = new Uint32Array(mem, crcAt, 2 * n);
    const crcHi = new Uint32Array(n);
    const crcLo = new Uint32Array(n);
    for (let k = 0; k < done; k++) {
      crcLo[k] = crcs[2 * k];
      crcHi[k] = crcs[2 * k + 1];
    }
    if (failed < 0) return { crcHi, crcLo, failed: -1, reason: "" };
    const got = new Int32Array(mem, ERROR_AT, 1)[0];
    const reason = got < 0 ? PROBLEMS[-got] : `block decompressed to ${got} bytes, expected ${ps}`;
    return { crcHi, crcLo, failed, reason };
  }

  function crc64Of(data: Uint8Array, start: number, end: number, out: { hi: number; lo: number }) {
    if (!wasm) {
      crcUpdate(EMPTY, data, start, end, out);
      return;
    }
    const len = end - start;
    const need = BATCH_AT + 8 + len;
    if (need > wasm.memory.buffer.byteLength) {
      wasm.memory.grow(Math.ceil((need - wasm.memory.buffer.byteLength) / 65536));
    }
    new Uint8Array(wasm.memory.buffer, BATCH_AT + 8, len).set(data.subarray(start, end));
    wasm.crc64To(BATCH_AT + 8, len, BATCH_AT);
    const r = new Uint32Array(wasm.memory.buffer, BATCH_AT, 2);
    out.lo = r[0];
    out.hi = r[1];
  }

  /** Compresses `src` (at most 64 KiB) into `dst` at `dstPos`; null without WebAssembly. */
  function compress(src: Uint8Array, dst: Uint8Array, dstPos: number): number | null {
    if (!wasm) return null;
    const n = src.length;
    const out = BATCH_AT + n;
    const need = out + n + Math.floor(n / 255) + 16;
    if (need > wasm.memory.buffer.byteLength) {
      wasm.memory.grow(Math.ceil((need - wasm.memory.buffer.byteLength) / 65536));
    }
    new Uint8Array(wasm.memory.buffer, BATCH_AT, n).set(src);
    const len = wasm.lz4Compress(BATCH_AT, n, out);
    dst.set(new Uint8Array(wasm.memory.buffer, out, len), dstPos);
    return len;
  }

  function encodeBatchWasm(w: WasmExports, b: EncodeBatchInput): EncodeBatchResult {
    const n = b.count;
    const ps = b.pageSize;
    const bound = ps + Math.floor(ps / 255) + 16;
    const lensAt = BATCH_AT;
    const crcAt = (lensAt + 4 * n + 7) & ~7;
    const src = crcAt + 8 * n;
    const out = src + n * ps;
    const need = out + n * bound;
    if (need > w.memory.buffer.byteLength) {
      w.memory.grow(Math.ceil((need - w.memory.buffer.byteLength) / 65536));
    }
    new Uint8Array(w.memory.buffer, src, n * ps).set(b.src.subarray(0, n * ps));
    w.encodeBatch(n, src, out, ps, bound, lensAt, crcAt);
    const mem = w.memory.buffer;
    const lens = new Int32Array(mem, lensAt, n).slice();
    const crcs = new Uint32Array(mem, crcAt, 2 * n);
    const crcHi = new Uint32Array(n);
    const crcLo = new Uint32Array(n);
    const blocks = new Uint8Array(mem, out, n * bound);
    for (let k = 0; k < n; k++) {
      crcLo[k] = crcs[2 * k];
      crcHi[k] = crcs[2 * k + 1];
      b.out.set(blocks.subarray(k * bound, k * bound + lens[k]), k * bound);
    }
    return { lens, crcHi, crcLo };
  }

  return {
    crcUpdate,
    encodeBatch: (b) => wasm ? encodeBatchWasm(wasm, b) : null,
    compress,
    crc64: crc64Of,
    decodeBatch: (b) => wasm ? decodeBatchWasm(wasm, b) : decodeBatch(b),
    lz4Into,
    lz4Problem: (code) => PROBLEMS[-code] ?? `error ${code}`,
  };
}

/**
 * Restores that decode pages on worker threads (PagePool) write the same
 * bytes, reach the same checksums and refuse the same crafted files with
 * the same reasons as page-by-page decoding on the calling thread.
 */

import { join } from "node:path";
import * as fs from "node:fs";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { encodeLtx, LtxEncoder } from "../src/ltx/encoder.ts";
import { MemorySink } from "../src/ltx/io.ts";
import { LtxEncodeError } from "../src/ltx/errors.ts";
import { BatchedPageWriter } from "../src/ltx/batch_encoder.ts";
import { makeHeader } from "../src/ltx/header.ts";
import { PagePool } from "../src/ltx/page_pool.ts";
import { makePageKernel } from "../src/ltx/page_kernel.ts";
import { PAGE_KERNEL_WASM } from "../src/ltx/page_kernel_wasm.ts";
import {
  lz4CompressBlock,
  lz4CompressBlockJs,
  lz4CompressBound,
  lz4DecompressBlock,
} from "../src/ltx/lz4.ts";
import { crc64 } from "../src/ltx/crc64.ts";
import { PageApplier, ReplicaFileCheckError } from "../src/restore/apply.ts";
import type { ReplicaClient, ReplicaFile } from "../src/storage/mod.ts";
import { applyToModel, modelChecksum, rng, textPage } from "./helpers/pages.ts";
import { readVector } from "./helpers/vectors.ts";

const PS = 4096;

/** A replica of in-memory files, each read back in uneven chunks. */
function memoryClient(files: Map<string, Uint8Array>): ReplicaClient {
  const key = (level: number, min: bigint, max: bigint) => `${level}/${min}-${max}`;
  return {
    type: "memory",
    location: "memory:",
    listFiles: () => Promise.resolve([]),
    openFile(level, min, max) {
      const bytes = files.get(key(level, min, max))!;
      let at = 0;
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (at >= bytes.length) return c.close();
            const n = 1000 + (at % 7919);
            c.enqueue(bytes.slice(at, at + n));
            at += n;
          },
        }),
      );
    },
    writeFile: () => Promise.reject(new Error("read-only")),
    deleteFiles: () => Promise.reject(new Error("read-only")),
  };
}

function fileOf(level: number, min: bigint, max: bigint, size: number): ReplicaFile {
  return { level, minTXID: min, maxTXID: max, size, createdAt: new Date(0) };
}

/** A 700-page snapshot (three batches) and an increment with scattered pages that shrinks it. */
async function chain() {
  const r = rng(5);
  const model = new Map<number, Uint8Array>();
  const snapPages = [];
  for (let p = 1; p <= 700; p++) {
    // text pages compress; every 9th is random bytes (a literal-only block)
    const data = p % 9 === 0
      ? Uint8Array.from({ length: PS }, () => Math.floor(r() * 256))
      : textPage(PS, p);
    snapPages.push({ pgno: p, data });
  }
  const snapHeader = makeHeader({
    pageSize: PS,
    commit: 700,
    minTXID: 1n,
    maxTXID: 1n,
    timestamp: 1n,
  });
  const snap = await encodeLtx(snapHeader, snapPages);
  applyToModel(model, snapHeader, snapPages);
  const incPages = [];
  for (let p = 1; p <= 650; p++) {
    if (p % 3 === 0 || (p > 300 && p < 420)) {
      incPages.push({ pgno: p, data: textPage(PS, p + 5000) });
    }
  }
  const incHeader = makeHeader({
    pageSize: PS,
    commit: 650,
    minTXID: 2n,
    maxTXID: 2n,
    timestamp: 2n,
    preApplyChecksum: modelChecksum(model, 700, PS),
  });
  applyToModel(model, incHeader, incPages);
  const inc = await encodeLtx(incHeader, incPages, modelChecksum(model, 650, PS));
  const want = new Uint8Array(650 * PS);
  for (const [p, d] of model) if (p <= 650) want.set(d, (p - 1) * PS);
  return { snap, inc, want, sum: modelChecksum(model, 650, PS) };
}

const MODES: [string, () => PagePool | null][] = [
  ["page by page", () => null],
  ["batches on this thread (WebAssembly)", () => new PagePool(0)],
  ["batches on this thread (JavaScript)", () => new PagePool(0, false)],
  ["one worker", () => new PagePool(1)],
  ["three workers", () => new PagePool(3)],
];

/** Applies `files` in every mode; the bytes written and the outcome (checksum or error). */
async function applyAll(files: Map<string, Uint8Array>, plan: ReplicaFile[]) {
  const dir = await Deno.makeTempDir({ prefix: "strata-pool-" });
  const outcomes: { mode: string; bytes: Uint8Array; result: string }[] = [];
  try {
    for (const [mode, make] of MODES) {
      const path = join(dir, mode.replaceAll(" ", "-"));
      const fd = fs.openSync(path, "w+");
      const a = new PageApplier(fd);
      a.pool = make();
      let result: string;
      try {
        for (const f of plan) await a.apply(memoryClient(files), f);
        result = `ok ${a.sum.value.toString(16)} ${a.commit}`;
      } catch (e) {
        assert(e instanceof ReplicaFileCheckError, `${mode}: ${e}`);
        result = `refused: ${e.message}`;
      } finally {
        a.pool?.close();
        fs.closeSync(fd);
      }
      outcomes.push({ mode, bytes: await Deno.readFile(path), result });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return outcomes;
}

Deno.test("page pool: every mode restores the same bytes and checksum", async () => {
  const { snap, inc, want, sum } = await chain();
  const files = new Map([["9/1-1", snap], ["0/2-2", inc]]);
  const plan = [fileOf(9, 1n, 1n, snap.length), fileOf(0, 2n, 2n, inc.length)];
  for (const o of await applyAll(files, plan)) {
    assertEquals(o.result, `ok ${sum.toString(16)} 650`, o.mode);
    assertEquals(o.bytes.length, want.length, o.mode);
    assert(o.bytes.every((b, i) => b === want[i]), `${o.mode}: bytes differ from the model`);
  }
});

/** Offset of page `pgno`'s frame in an encoded file (frames follow the 100-byte header). */
function frameOffset(file: Uint8Array, pgno: number): number {
  const dv = new DataView(file.buffer, file.byteOffset);
  let at = 100;
  while (dv.getUint32(at) !== pgno) at += 10 + dv.getUint32(at + 6);
  return at;
}

Deno.test("page pool: crafted snapshots are refused with the same reason in every mode", async () => {
  const { snap } = await chain();
  const at = frameOffset(snap, 400); // in the second batch
  const len = new DataView(snap.buffer).getUint32(at + 6);
  const crafted: [string, Uint8Array][] = [];
  // a flipped byte in a compressed block: bad LZ4 or a file checksum mismatch
  for (const k of [11, Math.floor(len / 2), len - 1]) {
    const b = snap.slice();
    b[at + 10 + k] ^= 0x5a;
    crafted.push([`block byte ${k} flipped`, b]);
  }
  // a match offset of zero in the block's first sequence, decompressing short
  const zero = snap.slice();
  zero[at + 10] = 0x0f; // no literals, then a match
  zero[at + 11] = 0;
  zero[at + 12] = 0;
  crafted.push(["match offset 0", zero]);
  // the block of a page whose content is 10 bytes short of a page
  const short = textPage(PS - 10, 1);
  const block = new Uint8Array(lz4CompressBound(PS));
  const n = lz4CompressBlock(short, block);
  const shortFile = new Uint8Array(snap.length - len + n);
  shortFile.set(snap.subarray(0, at + 6));
  new DataView(shortFile.buffer).setUint32(at + 6, n);
  shortFile.set(block.subarray(0, n), at + 10);
  shortFile.set(snap.subarray(at + 10 + len), at + 10 + n);
  crafted.push(["a block of a short page", shortFile]);
  crafted.push(["truncated in a batch", snap.slice(0, at + 5)]);
  for (const [what, bytes] of crafted) {
    const files = new Map([["9/1-1", bytes]]);
    const outcomes = await applyAll(files, [fileOf(9, 1n, 1n, bytes.length)]);
    const first = outcomes[0].result;
    assert(first.startsWith("refused: "), `${what}: ${first}`);
    for (const o of outcomes) assertEquals(o.result, first, `${what}, ${o.mode}`);
  }
});

Deno.test("page pool: legacy LZ4-frame pages fall back to page-by-page reading", async () => {
  const v = await readVector("ltx", "legacy051_a_snapshot.ltx");
  const h = new DataView(v.buffer, v.byteOffset);
  const max = h.getBigUint64(24);
  const outcomes = await applyAll(new Map([[`9/1-${max}`, v]]), [fileOf(9, 1n, max, v.length)]);
  for (const o of outcomes) {
    assertEquals(o.result, outcomes[0].result, o.mode);
    assertEquals(o.bytes, outcomes[0].bytes, o.mode);
  }
  assert(outcomes[0].result.startsWith("ok "), outcomes[0].result);
});

Deno.test("page kernel: CRC-64 and LZ4 agree with the library's, in JavaScript and WebAssembly", () => {
  const r0 = rng(9);
  const pages = [
    textPage(PS, 77),
    new Uint8Array(PS),
    Uint8Array.from({ length: PS }, () => Math.floor(r0() * 256)),
    Uint8Array.from({ length: PS }, (_, i) => (i % 5) * 3), // short repeats: overlapping matches
  ];
  const block = new Uint8Array(pages.length * lz4CompressBound(PS));
  const at = new Int32Array(pages.length);
  const len = new Int32Array(pages.length);
  let used = 0;
  pages.forEach((p, k) => {
    at[k] = used;
    len[k] = lz4CompressBlock(p, block.subarray(used));
    used += len[k];
  });
  for (const k of [makePageKernel(), makePageKernel(PAGE_KERNEL_WASM)]) {
    const out = new Uint8Array(pages.length * PS);
    const r = k.decodeBatch({ pageSize: PS, src: block, at, len, out });
    assertEquals(r.failed, -1);
    pages.forEach((p, i) => {
      assertEquals(out.subarray(i * PS, (i + 1) * PS), p);
      assertEquals((BigInt(r.crcHi[i]) << 32n) | BigInt(r.crcLo[i]), crc64(p));
    });
  }
  const n = len[0];
  // a decoder closed with work in flight fails it instead of hanging
  const pool = new PagePool(1);
  const pending = pool.decode({
    pageSize: PS,
    src: block.slice(),
    at: Int32Array.of(0),
    len: Int32Array.of(n),
    out: new Uint8Array(PS),
  });
  pool.close();
  return pending.then(
    () => assert(false, "a closed pool resolved"),
    (e) => assertEquals((e as Error).message, "page decoder closed"),
  );
});

Deno.test("page kernel: JavaScript and WebAssembly agree on random and corrupted blocks", () => {
  const r = rng(31);
  const js = makePageKernel();
  const wasm = makePageKernel(PAGE_KERNEL_WASM);
  const bound = lz4CompressBound(PS);
  for (let t = 0; t < 400; t++) {
    // pages of runs, repeats at short and long distances, and noise
    const page = new Uint8Array(PS);
    for (let i = 0; i < PS;) {
      const kind = Math.floor(r() * 4);
      const n = Math.min(PS - i, 1 + Math.floor(r() * 300));
      for (let j = 0; j < n; j++, i++) {
        page[i] = kind === 0
          ? 0
          : kind === 1
          ? Math.floor(r() * 256)
          : kind === 2
          ? page[Math.max(0, i - 1 - Math.floor(r() * 7))]
          : page[Math.max(0, i - 9 - Math.floor(r() * 60))];
      }
    }
    const block = new Uint8Array(bound + 32);
    const n = lz4CompressBlock(page, block);
    if (t % 2 === 1) {
      for (let f = 0; f < 1 + Math.floor(r() * 3); f++) {
        block[Math.floor(r() * n)] = Math.floor(r() * 256);
      }
    }
    const outs = [js, wasm].map((k) => {
      const out = new Uint8Array(PS);
      const res = k.decodeBatch({
        pageSize: PS,
        src: block,
        at: Int32Array.of(0),
        len: Int32Array.of(n),
        out,
      });
      return { out, failed: res.failed, reason: res.reason, crc: [res.crcHi[0], res.crcLo[0]] };
    });
    assertEquals(outs[1].failed, outs[0].failed, `block ${t}`);
    assertEquals(outs[1].reason, outs[0].reason, `block ${t}`);
    if (outs[0].failed < 0) {
      assertEquals(outs[1].out, outs[0].out, `block ${t}`);
      assertEquals(outs[1].crc, outs[0].crc, `block ${t}`);
      if (t % 2 === 0) assertEquals(outs[0].out, page, `block ${t}`);
    }
  }
});

Deno.test("LZ4 compression in WebAssembly writes the JavaScript compressor's bytes", () => {
  const r = rng(44);
  const a = new Uint8Array(lz4CompressBound(65536));
  const b = new Uint8Array(lz4CompressBound(65536));
  for (let t = 0; t < 300; t++) {
    const size = [0, 5, 12, 13, 100, 512, 4096, 65536][t % 8];
    const page = new Uint8Array(size);
    for (let i = 0; i < size;) {
      const kind = Math.floor(r() * 4);
      const n = Math.min(size - i, 1 + Math.floor(r() * 400));
      for (let j = 0; j < n; j++, i++) {
        page[i] = kind === 0
          ? 7
          : kind === 1
          ? Math.floor(r() * 256)
          : page[Math.max(0, i - 1 - Math.floor(r() * (kind === 2 ? 9 : 3000)))];
      }
    }
    const n1 = lz4CompressBlockJs(page, a, 3);
    const n2 = lz4CompressBlock(page, b, 3);
    assertEquals(n2, n1, `input ${t} (${size} bytes)`);
    assertEquals(b.subarray(3, 3 + n2), a.subarray(3, 3 + n1), `input ${t} (${size} bytes)`);
    if (size > 0) {
      const out = new Uint8Array(size);
      lz4DecompressBlock(b, 3, 3 + n2, out);
      assertEquals(out, page);
    }
  }
});

Deno.test("batched encoding on worker threads writes the same file as page by page", async () => {
  const r = rng(8);
  const pages: Uint8Array[] = [];
  for (let p = 1; p <= 3000; p++) {
    pages.push(
      p % 7 === 0 ? Uint8Array.from({ length: PS }, () => Math.floor(r() * 256)) : textPage(PS, p),
    );
  }
  const header = makeHeader({
    pageSize: PS,
    commit: 3000,
    minTXID: 1n,
    maxTXID: 9n,
    timestamp: 5n,
  });
  const want = await encodeLtx(header, pages.map((data, i) => ({ pgno: i + 1, data })));
  for (const threads of [0, 1, 2]) {
    const sink = new MemorySink();
    const enc = new LtxEncoder(sink, header);
    const pool = new PagePool(threads);
    try {
      const w = new BatchedPageWriter(enc, pool);
      const scratch = new Uint8Array(PS);
      for (let i = 0; i < pages.length; i++) {
        scratch.set(pages[i]); // the writer copies: the caller's buffer is reused at once
        await w.writePage(i + 1, scratch);
      }
      await w.flush();
      await enc.finish();
    } finally {
      pool.close();
    }
    assertEquals(sink.bytes(), want, `${threads} threads`);
  }
  // the encoder's rules still hold: a page out of order is refused when its batch lands
  const pool = new PagePool(1);
  try {
    const w = new BatchedPageWriter(new LtxEncoder(new MemorySink(), header), pool);
    await w.writePage(1, pages[0]);
    await w.writePage(3, pages[2]);
    await assertRejects(() => w.flush(), LtxEncodeError, "snapshot is missing page 2");
  } finally {
    pool.close();
  }
});

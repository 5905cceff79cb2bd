import { assert, assertEquals, assertRejects, assertThrows } from "./helpers/assert.ts";
import { decodeLtx } from "../src/ltx/decoder.ts";
import { encodeLtx, LtxEncoder } from "../src/ltx/encoder.ts";
import { LtxEncodeError, LtxFormatError } from "../src/ltx/errors.ts";
import { makeHeader } from "../src/ltx/header.ts";
import { MemorySink } from "../src/ltx/io.ts";
import { lz4CompressBlock, lz4CompressBound, lz4DecompressBlock } from "../src/ltx/lz4.ts";
import { readLtxIndex, readLtxPage } from "../src/ltx/page_index.ts";
import { lockPageNumber, pageChecksum } from "../src/ltx/checksum.ts";
import { crc64, crc64Combine, crc64FromBigInt, crc64ToBigInt } from "../src/ltx/crc64.ts";
import { readVector } from "./helpers/vectors.ts";
import { applyToModel, modelChecksum, pagesOf, rng, textPage } from "./helpers/pages.ts";

const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

Deno.test("lz4 block round-trips text, zero, random and short inputs", () => {
  const r = rng(7);
  const inputs = [
    new Uint8Array(0),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(4096),
    textPage(4096, 1),
    textPage(65536, 2),
    Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256)),
  ];
  for (const input of inputs) {
    const dst = new Uint8Array(lz4CompressBound(input.length));
    const n = lz4CompressBlock(input, dst);
    const out = new Uint8Array(input.length);
    if (input.length > 0) lz4DecompressBlock(dst, 0, n, out);
    assertEquals(out, input);
  }
});

Deno.test("an incompressible 4096-byte page becomes a 4114-byte literal block", () => {
  const r = rng(3);
  const page = Uint8Array.from({ length: 4096 }, () => Math.floor(r() * 256));
  const dst = new Uint8Array(lz4CompressBound(4096));
  assertEquals(lz4CompressBlock(page, dst), 4114);
});

Deno.test("crc64Combine equals the CRC of the concatenation", () => {
  const r = rng(11);
  for (let t = 0; t < 50; t++) {
    const a = Uint8Array.from({ length: Math.floor(r() * 3000) }, () => Math.floor(r() * 256));
    const b = Uint8Array.from({ length: Math.floor(r() * 3000) }, () => Math.floor(r() * 256));
    const ab = new Uint8Array(a.length + b.length);
    ab.set(a);
    ab.set(b, a.length);
    const c = crc64Combine(crc64FromBigInt(crc64(a)), crc64FromBigInt(crc64(b)), b.length);
    assertEquals(crc64ToBigInt(c), crc64(ab));
  }
});

Deno.test("encode → decode round trips over random page sets at every page size", async () => {
  const r = rng(42);
  for (const pageSize of PAGE_SIZES) {
    const commit = 1 + Math.floor(r() * 40);
    // snapshot: every page
    const snapPages = [];
    for (let p = 1; p <= commit; p++) {
      snapPages.push({ pgno: p, data: textPage(pageSize, p * 31 + pageSize) });
    }
    const snapHeader = makeHeader({ pageSize, commit, minTXID: 1n, maxTXID: 5n, timestamp: 1234n });
    const snap = await encodeLtx(snapHeader, snapPages);
    const ds = await decodeLtx(snap);
    assertEquals(ds.header, snapHeader);
    assertEquals(pagesOf(ds.pages), snapPages.map((p) => [p.pgno, p.data]));
    const model = new Map<number, Uint8Array>();
    applyToModel(model, ds.header, ds.pages);
    assertEquals(ds.trailer.postApplyChecksum, modelChecksum(model, commit, pageSize));

    // incremental: a random subset, with a caller-computed post-apply checksum
    const subset = [];
    const newCommit = commit + Math.floor(r() * 5);
    for (let p = 1; p <= newCommit; p++) {
      if (p > commit || r() < 0.3) subset.push({ pgno: p, data: textPage(pageSize, p * 7 + 1) });
    }
    const incHeader = makeHeader({
      pageSize,
      commit: newCommit,
      minTXID: 6n,
      maxTXID: 6n,
      timestamp: 2000n,
      preApplyChecksum: ds.trailer.postApplyChecksum,
    });
    applyToModel(model, incHeader, subset);
    const post = modelChecksum(model, newCommit, pageSize);
    const di = await decodeLtx(await encodeLtx(incHeader, subset, post));
    assertEquals(pagesOf(di.pages), subset.map((p) => [p.pgno, p.data]));
    assertEquals(di.trailer.postApplyChecksum, post);
  }
});

Deno.test("NoChecksum files round-trip with zero checksums", async () => {
  const h = makeHeader({ pageSize: 1024, commit: 2, minTXID: 3n, maxTXID: 4n, flags: 2 });
  const d = await decodeLtx(await encodeLtx(h, [{ pgno: 2, data: textPage(1024, 9) }]));
  assertEquals(d.trailer.postApplyChecksum, 0n);
  assertEquals(d.header.flags, 2);
});

Deno.test("encoder enforces the spec's rules", async () => {
  const page = textPage(512, 1);
  const inc = makeHeader({
    pageSize: 512,
    commit: 3,
    minTXID: 2n,
    maxTXID: 2n,
    preApplyChecksum: 0x8000000000000001n,
  });
  const cases: [string, () => Promise<unknown>][] = [
    ["out of order", async () => {
      const e = new LtxEncoder(new MemorySink(), inc);
      await e.writePage(2, page);
      await e.writePage(1, page);
    }],
    ["repeated", async () => {
      const e = new LtxEncoder(new MemorySink(), inc);
      await e.writePage(2, page);
      await e.writePage(2, page);
    }],
    ["above commit", () => new LtxEncoder(new MemorySink(), inc).writePage(4, page)],
    [
      "lock page",
      () =>
        new LtxEncoder(new MemorySink(), makeHeader({ ...inc, pageSize: 65536, commit: 20000 }))
          .writePage(lockPageNumber(65536), new Uint8Array(65536)),
    ],
    [
      "wrong page size",
      () => new LtxEncoder(new MemorySink(), inc).writePage(1, new Uint8Array(100)),
    ],
    ["snapshot gap", async () => {
      const e = new LtxEncoder(
        new MemorySink(),
        makeHeader({ pageSize: 512, commit: 3, minTXID: 1n, maxTXID: 1n }),
      );
      await e.writePage(1, page);
      await e.writePage(3, page);
    }],
    ["snapshot incomplete", async () => {
      const e = new LtxEncoder(
        new MemorySink(),
        makeHeader({ pageSize: 512, commit: 3, minTXID: 1n, maxTXID: 1n }),
      );
      await e.writePage(1, page);
      await e.finish();
    }],
    ["missing post-apply", () => new LtxEncoder(new MemorySink(), inc).finish()],
    ["snapshot with wrong expected checksum", async () => {
      const e = new LtxEncoder(
        new MemorySink(),
        makeHeader({ pageSize: 512, commit: 1, minTXID: 1n, maxTXID: 1n }),
      );
      await e.writePage(1, page);
      await e.finish(0x8000000000000000n);
    }],
  ];
  for (const [what, fn] of cases) {
    await assertRejects(fn, LtxEncodeError).catch((e) => {
      throw new Error(`${what}: ${e.message}`);
    });
  }
  assertThrows(
    () => new LtxEncoder(new MemorySink(), makeHeader({ ...inc, preApplyChecksum: 5n })),
    LtxEncodeError,
  );
  assertThrows(
    () => new LtxEncoder(new MemorySink(), makeHeader({ ...inc, pageSize: 1000 })),
    LtxEncodeError,
  );
  assertThrows(
    () => new LtxEncoder(new MemorySink(), makeHeader({ ...inc, minTXID: 0n })),
    LtxEncodeError,
  );
  assertThrows(
    () => new LtxEncoder(new MemorySink(), makeHeader({ ...inc, walSize: 10n })),
    LtxEncodeError,
  );
});

for (const name of ["a_snapshot.ltx", "b_incr.ltx", "legacy051_a_snapshot.ltx"]) {
  Deno.test(`every single-byte flip of ${name} is rejected or decodes to the very same pages`, async () => {
    // The file checksum covers decompressed pages, so a flip inside an LZ4
    // block that decompresses to the same bytes (e.g. a match offset of 2 vs 3
    // inside a run of equal bytes) cannot be seen and is harmless. Anything
    // else must be rejected; nothing may ever decode to different pages.
    const good = await readVector("ltx", name);
    const original = await decodeLtx(good);
    const index = await readLtxIndex(
      (o, l) => Promise.resolve(good.slice(o, o + l)),
      good.length,
      name,
    );
    const insidePayload = (i: number) =>
      [...index.pages.values()].some((e) => i >= e.offset + 10 && i < e.offset + e.size);
    let rejected = 0;
    let harmless = 0;
    for (let i = 0; i < good.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = good.slice();
        bad[i] ^= mask;
        try {
          const d = await decodeLtx(bad, `${name}@${i}`);
          assertEquals(pagesOf(d.pages), pagesOf(original.pages), `flip at ${i} changed pages`);
          assertEquals(d.header, original.header);
          assert(insidePayload(i), `flip at ${i} outside compressed page data was accepted`);
          harmless++;
          assert(harmless <= 3 * 9 * original.pages.length, "too many flips decoded unchanged");
        } catch (e) {
          if (!(e instanceof LtxFormatError)) throw e;
          rejected++;
        }
      }
    }
    assert(rejected > good.length * 2.5, `only ${rejected} of ${good.length * 3} flips rejected`);
  });

  Deno.test(`every truncation of ${name} is rejected`, async () => {
    const good = await readVector("ltx", name);
    for (let n = 0; n < good.length; n++) {
      await assertRejects(() => decodeLtx(good.subarray(0, n), `${name}[:${n}]`), LtxFormatError);
    }
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    await assertRejects(() => decodeLtx(longer), LtxFormatError, "trailing bytes");
  });
}

Deno.test("decoder reads a file delivered in 1-byte chunks", async () => {
  const bytes = await readVector("ltx", "legacy051_random4096.ltx");
  const { LtxDecoder } = await import("../src/ltx/decoder.ts");
  const chunks = Array.from(bytes, (b) => new Uint8Array([b]));
  const d = new LtxDecoder(chunks);
  const p = await d.nextPage();
  assert(p !== null);
  assertEquals(await d.nextPage(), null);
  assertEquals(d.trailer!.postApplyChecksum, 0xadaed47e19a0c61cn);
});

Deno.test("random access reads one page through the index with ranged reads", async () => {
  const pageSize = 4096;
  const pages = [3, 7, 8, 100].map((pgno) => ({ pgno, data: textPage(pageSize, pgno) }));
  const h = makeHeader({
    pageSize,
    commit: 100,
    minTXID: 9n,
    maxTXID: 9n,
    preApplyChecksum: 0x8000000000000000n,
  });
  const file = await encodeLtx(h, pages, 0x8000000000000042n);
  const reads: [number, number][] = [];
  const read = (off: number, len: number) => {
    reads.push([off, len]);
    return Promise.resolve(file.slice(off, off + len));
  };
  const index = await readLtxIndex(read, file.length, "x.ltx");
  assertEquals([...index.pages.keys()], [3, 7, 8, 100]);
  assertEquals(await readLtxPage(read, index, 8, "x.ltx"), pages[2].data);
  assertEquals(await readLtxPage(read, index, 5, "x.ltx"), null);
  assert(reads.every(([, len]) => len < 5000), "only small ranges are read");
  // legacy vector too
  const legacy = await readVector("ltx", "legacy051_a_snapshot.ltx");
  const lr = (off: number, len: number) => Promise.resolve(legacy.slice(off, off + len));
  const li = await readLtxIndex(lr, legacy.length, "legacy");
  assertEquals(await readLtxPage(lr, li, 2, "legacy"), new Uint8Array(512).fill(2));
});

Deno.test("page checksum is flag | crc64(pgno BE ‖ page)", () => {
  const page = textPage(512, 5);
  const buf = new Uint8Array(516);
  new DataView(buf.buffer).setUint32(0, 77);
  buf.set(page, 4);
  assertEquals(pageChecksum(77, page), crc64(buf) | 0x8000000000000000n);
});

Deno.test("a full copy after TXID 1 must carry the checksum of the pages it holds", async () => {
  const pages = new Map([[1, textPage(512, 1)], [2, textPage(512, 2)], [3, textPage(512, 3)]]);
  const sum = modelChecksum(pages, 3, 512);
  const header = makeHeader({
    pageSize: 512,
    commit: 3,
    minTXID: 5n,
    maxTXID: 5n,
    preApplyChecksum: 0x8000000000000001n,
  });
  const write = async (post: bigint) => {
    const e = new LtxEncoder(new MemorySink(), header, { fullCopy: true });
    for (const [p, data] of pages) await e.writePage(p, data);
    return await e.finish(post);
  };
  assertEquals((await write(sum)).postApplyChecksum, sum);
  const err = await assertRejects(() => write(sum ^ 1n), LtxEncodeError);
  assert(/full copy pages have checksum/.test((err as Error).message));
});

Deno.test("decoder reads a byte stream into its own buffer (BYOB), growing it for 64 KiB pages", async () => {
  const { LtxDecoder } = await import("../src/ltx/decoder.ts");
  const pageSize = 65536;
  const pages = [1, 2, 3].map((pgno) => ({ pgno, data: textPage(pageSize, pgno) }));
  const h = makeHeader({ pageSize, commit: 3, minTXID: 1n, maxTXID: 1n, timestamp: 1n });
  const bytes = await encodeLtx(h, pages);
  let at = 0;
  let byob = 0;
  // a byte stream handing out at most 777 bytes per read
  const stream = new ReadableStream({
    type: "bytes",
    pull(c) {
      const req = c.byobRequest;
      if (at >= bytes.length) {
        c.close();
        req?.respond(0);
        return;
      }
      if (req?.view) {
        byob++;
        const n = Math.min(777, req.view.byteLength, bytes.length - at);
        new Uint8Array(req.view.buffer, req.view.byteOffset, n).set(bytes.subarray(at, at + n));
        at += n;
        req.respond(n);
      } else {
        c.enqueue(bytes.slice(at, at + 777));
        at += 777;
      }
    },
  });
  let counted = 0;
  const d = new LtxDecoder(stream, { readSize: 64, onBytes: (n) => (counted += n) });
  for (const want of pages) {
    const p = await d.nextPage();
    assertEquals(p?.pgno, want.pgno);
    assertEquals(p!.data, want.data);
  }
  assertEquals(await d.nextPage(), null);
  assert(byob > 0, "the decoder never read into its own buffer");
  assertEquals(counted, bytes.length);
});

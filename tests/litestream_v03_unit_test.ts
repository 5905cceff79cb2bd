/**
 * The Litestream v0.3 layout reader's choices (generation, snapshot, WAL
 * segments by time) on a made-up listing, and the streaming LZ4 frame decoder
 * on hand-built frames (independent and dependent blocks, stored blocks,
 * block and content checksums, truncation).
 */

import { assertEquals, assertRejects } from "./helpers/assert.ts";
import {
  planV03Restore,
  type RawEntry,
  type RawReplicaReader,
  V03LayoutError,
} from "../src/storage/litestream_v03.ts";
import { lz4FrameChunks } from "../src/ltx/lz4_stream.ts";
import { lz4CompressBlock, lz4CompressBound } from "../src/ltx/lz4.ts";
import { xxHash32 } from "../src/ltx/xxhash32.ts";
import { LZ4Error } from "../src/ltx/errors.ts";

/** A replica listing in memory: path -> modification time (seconds). */
function fakeReplica(files: Record<string, number>): RawReplicaReader {
  return {
    location: "fake://replica",
    listRaw(dir: string): Promise<RawEntry[]> {
      const out = new Map<string, RawEntry>();
      for (const [path, t] of Object.entries(files)) {
        if (!path.startsWith(dir + "/")) continue;
        const rest = path.slice(dir.length + 1);
        const i = rest.indexOf("/");
        const name = `${dir}/${i < 0 ? rest : rest.slice(0, i)}`;
        out.set(name, {
          name,
          isDir: i >= 0,
          size: i >= 0 ? 0 : 100,
          modified: new Date(i >= 0 ? 0 : t * 1000),
        });
      }
      return Promise.resolve([...out.values()]);
    },
    openRaw(): Promise<ReadableStream<Uint8Array>> {
      throw new Error("not used");
    },
  };
}

const G1 = "1111111111111111";
const G2 = "2222222222222222";
const snap = (g: string, i: number) => `generations/${g}/snapshots/${hex(i)}.snapshot.lz4`;
const seg = (g: string, i: number, off: number) =>
  `generations/${g}/wal/${hex(i)}_${hex(off)}.wal.lz4`;
const hex = (n: number) => n.toString(16).padStart(8, "0");
const at = (s: number) => new Date(s * 1000);

const TWO_GENERATIONS = {
  [snap(G1, 0)]: 100,
  [seg(G1, 0, 0)]: 110,
  [seg(G1, 0, 4152)]: 150,
  [seg(G1, 1, 0)]: 200,
  [snap(G2, 0)]: 300,
  [seg(G2, 0, 0)]: 310,
  [snap(G2, 2)]: 350,
  [seg(G2, 1, 0)]: 320,
  [seg(G2, 2, 0)]: 355,
  [seg(G2, 2, 32)]: 365,
  [seg(G2, 3, 0)]: 400,
  "generations/not-a-generation/snapshots/00000000.snapshot.lz4": 999,
  [`generations/${G2}/wal/junk.tmp`]: 999,
};

function summary(p: Awaited<ReturnType<typeof planV03Restore>>) {
  return {
    generation: p.generation,
    snapshot: p.snapshot.index,
    wal: p.wal.map((w) => `${w.index}:${w.segments.map((s) => s.offset).join(",")}`),
  };
}

Deno.test("v0.3 plan: latest is the generation updated last, its newest snapshot and every later segment", async () => {
  const p = await planV03Restore(fakeReplica(TWO_GENERATIONS));
  assertEquals(summary(p), { generation: G2, snapshot: 2, wal: ["2:0,32", "3:0"] });
  assertEquals(p.bytes, 400); // the snapshot and three segments, 100 bytes each
});

Deno.test("v0.3 plan: a timestamp picks the generation spanning it, the snapshot before it, segments up to it", async () => {
  const r = fakeReplica(TWO_GENERATIONS);
  assertEquals(summary(await planV03Restore(r, at(150))), {
    generation: G1,
    snapshot: 0,
    wal: ["0:0,4152"],
  });
  assertEquals(summary(await planV03Restore(r, at(149))), {
    generation: G1,
    snapshot: 0,
    wal: ["0:0"],
  });
  // before the second snapshot: the first one, then indexes 0 and 1
  assertEquals(summary(await planV03Restore(r, at(340))), {
    generation: G2,
    snapshot: 0,
    wal: ["0:0", "1:0"],
  });
  assertEquals(summary(await planV03Restore(r, at(360))), {
    generation: G2,
    snapshot: 2,
    wal: ["2:0"],
  });
  // between generations: the last state of the one that ended before (v0.3.13 refuses this)
  assertEquals(summary(await planV03Restore(r, at(250))), {
    generation: G1,
    snapshot: 0,
    wal: ["0:0,4152", "1:0"],
  });
  await assertRejects(() => planV03Restore(r, at(50)), V03LayoutError, "no generation has data");
});

Deno.test("v0.3 plan: segments count in (index, offset) order up to the first one after the time", async () => {
  const r = fakeReplica({
    [snap(G1, 0)]: 100,
    [seg(G1, 0, 0)]: 110,
    [seg(G1, 1, 0)]: 130,
    [seg(G1, 1, 64)]: 120, // older than the one before it: still not taken at 125
  });
  assertEquals(summary(await planV03Restore(r, at(125))), {
    generation: G1,
    snapshot: 0,
    wal: ["0:0"],
  });
});

Deno.test("v0.3 plan: a snapshot counts at a time only once the segment completing it exists by then", async () => {
  // G2 began while the app wrote: its snapshot (300) holds pages that only its first
  // segment (320) completes, so at 310 the state is G1's last one, not a malformed mix
  const r = fakeReplica({
    [snap(G1, 0)]: 100,
    [seg(G1, 0, 0)]: 110,
    [seg(G1, 0, 4152)]: 305,
    [snap(G2, 0)]: 300,
    [seg(G2, 0, 0)]: 320,
    [snap(G2, 1)]: 400,
    [seg(G2, 1, 0)]: 420,
  });
  assertEquals(summary(await planV03Restore(r, at(310))), {
    generation: G1,
    snapshot: 0,
    wal: ["0:0,4152"],
  });
  assertEquals(summary(await planV03Restore(r, at(320))), {
    generation: G2,
    snapshot: 0,
    wal: ["0:0"],
  });
  // a later snapshot not yet completed: the one before it and the segments up to the time
  assertEquals(summary(await planV03Restore(r, at(410))), {
    generation: G2,
    snapshot: 0,
    wal: ["0:0"],
  });
  assertEquals(summary(await planV03Restore(r, at(420))), {
    generation: G2,
    snapshot: 1,
    wal: ["1:0"],
  });
  // nothing consistent at all: a named error saying which snapshot waits for which segment
  const alone = fakeReplica({ [snap(G1, 0)]: 100, [seg(G1, 0, 0)]: 120 });
  await assertRejects(
    () => planV03Restore(alone, at(110)),
    V03LayoutError,
    `no consistent state at or before 1970-01-01T00:01:50.000Z: snapshot generations/${G1}/snapshots/00000000.snapshot.lz4`,
  );
});

Deno.test("v0.3 plan: a missing WAL index, a missing first segment or no snapshot are named errors", async () => {
  await assertRejects(
    () => planV03Restore(fakeReplica({ [snap(G1, 0)]: 1, [seg(G1, 0, 0)]: 2, [seg(G1, 2, 0)]: 3 })),
    V03LayoutError,
    `missing WAL index ${G1}/00000001`,
  );
  await assertRejects(
    () => planV03Restore(fakeReplica({ [snap(G1, 0)]: 1, [seg(G1, 0, 4152)]: 2 })),
    V03LayoutError,
    "missing the first WAL segment",
  );
  await assertRejects(
    () => planV03Restore(fakeReplica({ [seg(G1, 0, 0)]: 2 })),
    V03LayoutError,
    `generation ${G1} has no snapshot`,
  );
  await assertRejects(
    () => planV03Restore(fakeReplica({})),
    V03LayoutError,
    "no generations found",
  );
});

// ---- LZ4 frames ---------------------------------------------------------------

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** A frame with the given flags, blocks ({data, stored}) and content. */
function frame(
  flg: number,
  blocks: { data: Uint8Array; stored: boolean }[],
  content: Uint8Array,
): Uint8Array {
  const bd = 0x40; // 64 KiB blocks
  const out: number[] = [0x04, 0x22, 0x4d, 0x18, flg, bd];
  out.push((xxHash32(new Uint8Array([flg, bd]), 0) >>> 8) & 0xff);
  for (const b of blocks) {
    out.push(...le32(b.data.length | (b.stored ? 0x80000000 : 0)), ...b.data);
    if (flg & 0x10) out.push(...le32(xxHash32(b.data, 0)));
  }
  out.push(...le32(0));
  if (flg & 0x04) out.push(...le32(xxHash32(content, 0)));
  return new Uint8Array(out);
}

async function decodeAll(bytes: Uint8Array, chunk = 7): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.slice(i, i + chunk));
  const out: number[] = [];
  for await (const c of lz4FrameChunks(parts)) out.push(...c);
  return new Uint8Array(out);
}

Deno.test("lz4 frames: independent compressed and stored blocks with a content checksum, fed in small pieces", async () => {
  const a = new Uint8Array(65536).map((_, i) => (i * 7) % 13);
  const b = new TextEncoder().encode("stored block, not compressed");
  const packed = new Uint8Array(lz4CompressBound(a.length));
  const n = lz4CompressBlock(a, packed);
  const content = new Uint8Array([...a, ...b]);
  const f = frame(
    0x64,
    [{ data: packed.subarray(0, n), stored: false }, { data: b, stored: true }],
    content,
  );
  assertEquals(await decodeAll(f), content);
  assertEquals(await decodeAll(f, 1 << 20), content);

  const bad = f.slice();
  bad[bad.length - 2] ^= 1; // content checksum
  await assertRejects(() => decodeAll(bad), LZ4Error, "content checksum");
  for (const cut of [3, 10, n >> 1, f.length - 4, f.length - 1]) {
    await assertRejects(() => decodeAll(f.subarray(0, cut)), LZ4Error);
  }
  await assertRejects(() => decodeAll(new Uint8Array(0)), LZ4Error, "no LZ4 frame");
});

Deno.test("lz4 frames: a dependent block matching into the previous block; block checksums", async () => {
  const first = new TextEncoder().encode("0123456789abcdef");
  // a match of 16 bytes at offset 16 (into the first block), then the literal "Z"
  const second = new Uint8Array([0x0c, 16, 0, 0x10, 0x5a]);
  const content = new TextEncoder().encode("0123456789abcdef0123456789abcdefZ");
  const f = frame(0x54, [{ data: first, stored: true }, { data: second, stored: false }], content);
  assertEquals(await decodeAll(f), content);
  // the same block in an independent frame may not reach back
  const indep = frame(
    0x74,
    [{ data: first, stored: true }, { data: second, stored: false }],
    content,
  );
  await assertRejects(() => decodeAll(indep), LZ4Error, "invalid match offset");
  const bad = f.slice();
  bad[7 + 4 + first.length] ^= 1; // the first block's checksum
  await assertRejects(() => decodeAll(bad), LZ4Error, "block checksum");
});

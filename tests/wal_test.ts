import { assert, assertEquals } from "./helpers/assert.ts";
import { headerChecksum, parseWalHeader, scanWal } from "../src/sqlite/wal.ts";
import { readVector } from "./helpers/vectors.ts";

async function scan(name: string) {
  const bytes = await readVector("wal", name, "wal");
  const h = parseWalHeader(bytes.subarray(0, 32));
  assert(h, `${name}: header parses`);
  const readAt = (o: number, l: number) => bytes.subarray(o, Math.min(bytes.length, o + l));
  return { h, bytes, scan: scanWal(readAt, h, 32, headerChecksum(h)) };
}

Deno.test("wal/ok: three valid frames, two commits, page data where the README says", async () => {
  const { h, scan: s } = await scan("ok");
  assertEquals(h.pageSize, 4096);
  assertEquals(h.bigEndianChecksum, false);
  assertEquals(s.frames.map((f) => [f.offset, f.pgno, f.commit]), [[32, 1, 0], [4152, 2, 2], [
    8272,
    2,
    2,
  ]]);
  assertEquals(s.endOffset, 12392);
  assertEquals(s.commit, 2);
});

Deno.test("wal/salt-mismatch: frame 1 valid, the WAL ends at frame 2 (no commit reached)", async () => {
  const { scan: s } = await scan("salt-mismatch");
  // frame 1 is not a commit frame, so nothing is committed
  assertEquals(s.frames.length, 0);
  assertEquals(s.endOffset, 32);
});

Deno.test("wal/frame-checksum-mismatch: the WAL ends at frame 2 without error", async () => {
  const { scan: s } = await scan("frame-checksum-mismatch");
  assertEquals(s.frames.length, 0);
  assertEquals(s.endOffset, 32);
});

Deno.test("wal/frame-salts: only frames of the header's salts that chain from the header count", async () => {
  const { h, bytes, scan: s } = await scan("frame-salts");
  assertEquals(bytes.length, 41232);
  assert(s.endOffset <= bytes.length);
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  for (const f of s.frames) {
    assertEquals(dv.getUint32(f.offset + 8), h.salt1);
    assertEquals(dv.getUint32(f.offset + 12), h.salt2);
  }
  // the first two frames carry the header's salts and chain; the third is an older generation
  assertEquals(s.frames.length, 2);
  assertEquals(s.endOffset, 32 + 2 * 4120);
  assertEquals(dv.getUint32(s.endOffset + 8) === h.salt1, false);
});

Deno.test("a corrupt WAL header is not a WAL", async () => {
  const bytes = (await readVector("wal", "ok", "wal")).slice(0, 32);
  bytes[20] ^= 1;
  assertEquals(parseWalHeader(bytes), null);
});

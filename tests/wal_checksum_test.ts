/** The word-at-a-time WAL checksum equals the byte loop, in both byte orders. */

import { assertEquals, assertNotEquals } from "./helpers/assert.ts";
import { type WalChecksum, walChecksum, walChecksumWords } from "../src/sqlite/wal.ts";

/** The checksum as SQLite's walChecksumBytes defines it, read byte by byte. */
function reference(bigEndian: boolean, d: Uint8Array, ck: WalChecksum): WalChecksum {
  let s0 = ck.s0;
  let s1 = ck.s1;
  const dv = new DataView(d.buffer, d.byteOffset, d.length);
  for (let i = 0; i < d.length; i += 8) {
    s0 = (s0 + dv.getUint32(i, !bigEndian) + s1) >>> 0;
    s1 = (s1 + dv.getUint32(i + 4, !bigEndian) + s0) >>> 0;
  }
  return { s0, s1 };
}

Deno.test("walChecksum: word and byte loops agree with the definition, both byte orders, any alignment", () => {
  const data = crypto.getRandomValues(new Uint8Array(4096 + 24 + 3));
  const start: WalChecksum = { s0: 0x12345678, s1: 0x9abcdef0 };
  for (const bigEndian of [false, true]) {
    const want = reference(bigEndian, data.subarray(0, 4120), start);
    // aligned: the word loop
    assertEquals(walChecksum(bigEndian, data, 0, 4120, start), want);
    const words = new Int32Array(data.buffer, 0, 1030);
    assertEquals(walChecksumWords(bigEndian, words, 0, 1030, start), want);
    // unaligned: the byte loop
    const shifted = new Uint8Array(4123);
    shifted.set(data.subarray(0, 4120), 3);
    assertEquals(walChecksum(bigEndian, shifted, 3, 4123, start), want);
  }
  // the orders differ (a test that cannot tell them apart would prove nothing)
  assertNotEquals(
    walChecksum(true, data, 0, 4120, start),
    walChecksum(false, data, 0, 4120, start),
  );
});

/** Deterministic page generators and an in-memory "apply" model for LTX tests. */

import type { LtxPage } from "../../src/ltx/decoder.ts";
import type { LtxHeader } from "../../src/ltx/header.ts";
import { databaseChecksumOfPages, lockPageNumber } from "../../src/ltx/checksum.ts";

/** A small seeded PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A page that looks like SQLite table content: text rows with repeats and some noise. */
export function textPage(size: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(size);
  const words = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "user",
    "email",
    "@example.com",
    "2026-11-",
  ];
  let i = 16;
  out[0] = 0x0d;
  while (i < size) {
    const w = words[Math.floor(r() * words.length)];
    for (let k = 0; k < w.length && i < size; k++) out[i++] = w.charCodeAt(k);
    if (i < size) out[i++] = Math.floor(r() * 256);
  }
  return out;
}

/** Applies files' pages to a page map as a database would (truncating on commit). */
export function applyToModel(
  model: Map<number, Uint8Array>,
  header: LtxHeader,
  pages: { pgno: number; data: Uint8Array }[],
): void {
  if (header.minTXID === 1n) model.clear();
  for (const p of pages) model.set(p.pgno, p.data);
  for (const k of [...model.keys()]) if (k > header.commit) model.delete(k);
}

/** Database checksum of a page model with `commit` pages (missing pages count as zeros). */
export function modelChecksum(
  model: Map<number, Uint8Array>,
  commit: number,
  pageSize: number,
): bigint {
  const zero = new Uint8Array(pageSize);
  const lock = lockPageNumber(pageSize);
  function* pages() {
    for (let i = 1; i <= commit; i++) yield i === lock ? zero : model.get(i) ?? zero;
  }
  return databaseChecksumOfPages(pages(), pageSize);
}

export function pagesOf(decoded: LtxPage[]): [number, Uint8Array][] {
  return decoded.map((p) => [p.pgno, p.data]);
}

/** Micro-benchmarks of the LTX hot paths on real SQLite pages (Deno.bench). */

import { join } from "node:path";
import { crc64Update, crc64UpdateTable } from "../src/ltx/crc64.ts";
import { lz4CompressBlock, lz4CompressBound, lz4DecompressBlock } from "../src/ltx/lz4.ts";
import { makeTextDatabase, readPages } from "./sample_db.ts";

const dir = join(Deno.cwd(), ".tmp", "bench");
Deno.mkdirSync(dir, { recursive: true });
const dbPath = join(dir, "text-16m.db");
makeTextDatabase(dbPath, 16);
const pages = readPages(dbPath, 1024); // 4 MiB of table pages
const totalBytes = pages.length * 4096;
const compressed = pages.map((p) => {
  const dst = new Uint8Array(lz4CompressBound(p.length));
  return dst.slice(0, lz4CompressBlock(p, dst));
});
const out = { hi: 0, lo: 0 };
const scratch = new Uint8Array(lz4CompressBound(4096));
const page = new Uint8Array(4096);
const ratio = compressed.reduce((s, c) => s + c.length, 0) / totalBytes;
console.log(`${pages.length} pages (${totalBytes} bytes), LZ4 ratio ${(ratio * 100).toFixed(1)}%`);

Deno.bench({
  name: "crc64 (hash-wasm + combine), 4 MiB of 4 KiB pages",
  group: "crc64",
  baseline: true,
  n: 50,
}, () => {
  for (const p of pages) crc64Update({ hi: 0, lo: 0 }, p, 0, p.length, out);
});
Deno.bench({ name: "crc64 (JS slicing-by-8), 4 MiB of 4 KiB pages", group: "crc64", n: 50 }, () => {
  for (const p of pages) crc64UpdateTable({ hi: 0, lo: 0 }, p, 0, p.length, out);
});
Deno.bench({ name: "lz4 compress, 4 MiB of 4 KiB pages", group: "lz4", n: 20 }, () => {
  for (const p of pages) lz4CompressBlock(p, scratch);
});
Deno.bench({ name: "lz4 decompress, 4 MiB of 4 KiB pages", group: "lz4", n: 50 }, () => {
  for (const c of compressed) lz4DecompressBlock(c, 0, c.length, page);
});

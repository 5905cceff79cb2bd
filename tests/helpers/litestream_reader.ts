/**
 * An independent reader of LTX replicas that applies the rules of released
 * Litestream v0.5 (superfly/ltx v0.5.0–v0.5.2 decoder, Litestream's restore
 * planner), written apart from strata's decoder so that a file strata writes
 * "for Litestream" is checked by something other than the code that wrote it:
 *
 * - header: magic `LTX1`, flags within NoChecksum (0x2), TXIDs valid, a zero
 *   pre-apply checksum for NoChecksum files and snapshots;
 * - pages: flags 0 only (v0.5.0–v0.5.15 refuse any other: "no flags allowed"),
 *   each one LZ4 frame (version 1, content checksum checked with hash-wasm's
 *   xxHash32) decoded by the small LZ4 block decoder below; pages in order;
 * - page index and its size; trailer post-apply checksum zero (Litestream's
 *   restore compactor refuses any other in NoChecksum output); the file
 *   checksum, CRC-64/ISO (hash-wasm, Go's crc64.ISO) over the header, each
 *   page header and decompressed page, the zero page header, the index and
 *   the post-apply field, with the top bit set;
 * - planning: the newest level-9 snapshot (from TXID 1) at or before the
 *   target, then across levels 8..0 the file reaching furthest among those
 *   starting at or before the position + 1 and ending after it; applied
 *   newest page wins, pages above the final commit dropped, the lock page
 *   left zero.
 */

import { crc64, xxhash32 } from "hash-wasm";
import type { ReplicaClient, ReplicaFile } from "../../src/storage/mod.ts";

export interface LitestreamFile {
  flags: number;
  pageSize: number;
  commit: number;
  minTXID: bigint;
  maxTXID: bigint;
  timestamp: bigint;
  pages: Map<number, Uint8Array>;
}

const fail = (file: string, why: string): never => {
  throw new Error(`litestream reader: ${file}: ${why}`);
};

function readUvarint(b: Uint8Array, p: number): [number, number] {
  let x = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const c = b[p + i];
    x += (c & 0x7f) * mul;
    if (c < 0x80) return [x, p + i + 1];
    mul *= 128;
  }
  throw new Error("bad uvarint");
}

/** LZ4 block decoding (the format's reference semantics, byte by byte). */
function lz4Block(src: Uint8Array, out: Uint8Array): number {
  let ip = 0;
  let op = 0;
  while (ip < src.length) {
    const token = src[ip++];
    let lit = token >> 4;
    if (lit === 15) {
      let c;
      do lit += c = src[ip++]; while (c === 255);
    }
    for (let i = 0; i < lit; i++) out[op++] = src[ip++];
    if (ip >= src.length) break;
    const off = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (off === 0 || off > op) throw new Error(`bad match offset ${off}`);
    let len = token & 15;
    if (len === 15) {
      let c;
      do len += c = src[ip++]; while (c === 255);
    }
    len += 4;
    for (let i = 0; i < len; i++, op++) out[op] = out[op - off];
  }
  return op;
}

/** One LZ4 frame at `b[p..]` into a page of `size` bytes: [page, end offset]. */
async function lz4Frame(
  b: Uint8Array,
  p: number,
  size: number,
  file: string,
): Promise<[Uint8Array, number]> {
  const magic = new DataView(b.buffer, b.byteOffset + p, 4).getUint32(0, true);
  if (magic !== 0x184d2204) fail(file, `bad LZ4 frame magic at ${p}`);
  const flg = b[p + 4];
  const bd = b[p + 5];
  if (flg >> 6 !== 1) fail(file, "LZ4 frame version is not 1");
  const contentSize = (flg & 0x08) !== 0;
  const headEnd = p + 6 + (contentSize ? 8 : 0);
  const hc = parseInt(await xxhash32(b.subarray(p + 4, headEnd), 0), 16);
  if (((hc >>> 8) & 0xff) !== b[headEnd]) fail(file, "LZ4 frame header checksum");
  const maxBlock = 1 << (8 + 2 * ((bd >> 4) & 7));
  let q = headEnd + 1;
  const page = new Uint8Array(size);
  let filled = 0;
  while (true) {
    const word = new DataView(b.buffer, b.byteOffset + q, 4).getUint32(0, true);
    q += 4;
    if (word === 0) break;
    const n = word & 0x7fffffff;
    if (n > maxBlock) fail(file, `LZ4 block of ${n} bytes over the frame's ${maxBlock}`);
    const block = b.subarray(q, q + n);
    if (word & 0x80000000) {
      page.set(block, filled);
      filled += n;
    } else {
      const tmp = new Uint8Array(maxBlock);
      const got = lz4Block(block, tmp);
      page.set(tmp.subarray(0, got), filled);
      filled += got;
    }
    q += n;
    if (flg & 0x10) q += 4; // block checksum (not written by Litestream)
  }
  if (filled !== size) fail(file, `a page decompressed to ${filled} bytes, not ${size}`);
  if (flg & 0x04) {
    const want = new DataView(b.buffer, b.byteOffset + q, 4).getUint32(0, true);
    if (parseInt(await xxhash32(page, 0), 16) !== want) fail(file, "LZ4 content checksum");
    q += 4;
  }
  return [page, q];
}

/** Reads and checks one LTX file by Litestream v0.5's rules. */
export async function readLitestreamFile(b: Uint8Array, file: string): Promise<LitestreamFile> {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (new TextDecoder().decode(b.subarray(0, 4)) !== "LTX1") fail(file, "magic");
  const flags = dv.getUint32(4);
  if ((flags & ~0x2) !== 0) fail(file, `invalid flags 0x${flags.toString(16)}`);
  const pageSize = dv.getUint32(8);
  const commit = dv.getUint32(12);
  const minTXID = dv.getBigUint64(16);
  const maxTXID = dv.getBigUint64(24);
  const pre = dv.getBigUint64(40);
  if (minTXID === 0n || maxTXID === 0n || minTXID > maxTXID) fail(file, "TXID range");
  if ((flags & 0x2 || minTXID === 1n) && pre !== 0n) fail(file, "pre-apply checksum not allowed");
  // the file checksum's input, in order (pages decompressed)
  const hashed: Uint8Array[] = [b.subarray(0, 100)];
  const pages = new Map<number, Uint8Array>();
  const frames: [number, number, number][] = [];
  let p = 100;
  let prev = 0;
  while (true) {
    const pgno = dv.getUint32(p);
    const pflags = dv.getUint16(p + 4);
    hashed.push(b.subarray(p, p + 6));
    if (pgno === 0) {
      if (pflags !== 0) fail(file, "terminator flags");
      p += 6;
      break;
    }
    if (pflags !== 0) fail(file, `page ${pgno}: no flags allowed, reserved for future use`);
    if (pgno <= prev) fail(file, `page ${pgno} out of order`);
    if (pgno > commit) fail(file, `page ${pgno} above commit ${commit}`);
    const [page, end] = await lz4Frame(b, p + 6, pageSize, file);
    hashed.push(page);
    frames.push([pgno, p, end - p]);
    pages.set(pgno, page);
    prev = pgno;
    p = end;
  }
  const indexStart = p;
  for (const [pgno, off, size] of frames) {
    let v: number;
    [v, p] = readUvarint(b, p);
    if (v !== pgno) fail(file, `index names page ${v}, frame ${pgno}`);
    [v, p] = readUvarint(b, p);
    if (v !== off) fail(file, `index offset of page ${pgno}`);
    [v, p] = readUvarint(b, p);
    if (v !== size) fail(file, `index size of page ${pgno}`);
  }
  let zero: number;
  [zero, p] = readUvarint(b, p);
  if (zero !== 0) fail(file, "index terminator");
  if (dv.getBigUint64(p) !== BigInt(p - indexStart)) fail(file, "index size");
  p += 8;
  hashed.push(b.subarray(indexStart, p));
  if (b.length !== p + 16) fail(file, "trailer position");
  const post = dv.getBigUint64(p);
  if ((flags & 0x2) && post !== 0n) fail(file, "post-apply checksum not allowed");
  hashed.push(b.subarray(p, p + 8));
  const all = new Uint8Array(hashed.reduce((n, h) => n + h.length, 0));
  let o = 0;
  for (const h of hashed) {
    all.set(h, o);
    o += h.length;
  }
  const sum = BigInt("0x" + await crc64(all, "d800000000000000")) | (1n << 63n);
  if (sum !== dv.getBigUint64(p + 8)) fail(file, "file checksum mismatch");
  return { flags, pageSize, commit, minTXID, maxTXID, timestamp: dv.getBigInt64(32), pages };
}

/** Litestream v0.5's restore plan of the latest state (see the module comment). */
export function litestreamPlan(files: ReplicaFile[]): ReplicaFile[] {
  const snaps = files.filter((f) => f.level === 9);
  if (snaps.length === 0) throw new Error("litestream reader: no snapshot");
  const plan = [snaps.reduce((a, f) => (f.maxTXID > a.maxTXID ? f : a))];
  let cur = plan[0].maxTXID;
  while (true) {
    let next: ReplicaFile | null = null;
    for (const f of files) {
      if (f.level === 9 || f.minTXID > cur + 1n || f.maxTXID <= cur) continue;
      if (
        !next || f.maxTXID > next.maxTXID ||
        (f.maxTXID === next.maxTXID && f.minTXID < next.minTXID)
      ) next = f;
    }
    if (!next) return plan;
    plan.push(next);
    cur = next.maxTXID;
  }
}

/** Restores the replica's latest state as Litestream v0.5 would: the database's bytes. */
export async function litestreamRestore(client: ReplicaClient): Promise<Uint8Array> {
  const files: ReplicaFile[] = [];
  for (let level = 0; level <= 9; level++) files.push(...await client.listFiles(level));
  const plan = litestreamPlan(files);
  const pages = new Map<number, Uint8Array>();
  let pageSize = 0;
  let commit = 0;
  for (const f of plan) {
    const chunks: Uint8Array[] = [];
    for await (const c of await client.openFile(f.level, f.minTXID, f.maxTXID)) chunks.push(c);
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      bytes.set(c, o);
      o += c.length;
    }
    const name = `L${f.level}/${f.minTXID}-${f.maxTXID}`;
    const lf = await readLitestreamFile(bytes, name);
    if (lf.minTXID !== f.minTXID || lf.maxTXID !== f.maxTXID) fail(name, "header vs name");
    if (f === plan[0] && lf.minTXID !== 1n) fail(name, "the plan does not start at a snapshot");
    pageSize = lf.pageSize;
    commit = lf.commit;
    for (const [pgno, page] of lf.pages) pages.set(pgno, page);
  }
  const out = new Uint8Array(commit * pageSize);
  const lock = Math.floor(0x40000000 / pageSize) + 1;
  for (let pgno = 1; pgno <= commit; pgno++) {
    if (pgno === lock) continue;
    const page = pages.get(pgno);
    if (!page) fail("plan", `no version of page ${pgno}`);
    out.set(page!, (pgno - 1) * pageSize);
  }
  return out;
}

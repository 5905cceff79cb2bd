/**
 * Encode and decode of a 256 MiB snapshot from a real database file, with
 * throughput and peak memory (each measured in its own child process, so the
 * peak RSS is that of the work alone). Prints a Markdown table row per run.
 */

import { join } from "node:path";
import { makeTextDatabase } from "./sample_db.ts";
import {
  LtxDecoder,
  LtxEncoder,
  makeHeader,
  type RawPageBatch,
  writerSink,
} from "../src/ltx/mod.ts";
import { PagePool } from "../src/ltx/page_pool.ts";
import { BatchedPageWriter } from "../src/ltx/batch_encoder.ts";
import { machine, writeBenchSection } from "./report.ts";

const dir = join(Deno.cwd(), ".tmp", "bench");

function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

async function encode(dbPath: string, ltxPath: string, pooled = false): Promise<void> {
  const db = await Deno.open(dbPath);
  const size = (await db.stat()).size;
  const pageSize = 4096;
  const commit = size / pageSize;
  const out = await Deno.open(ltxPath, { write: true, create: true, truncate: true });
  const t0 = performance.now();
  const enc = new LtxEncoder(
    writerSink(out),
    makeHeader({ pageSize, commit, minTXID: 1n, maxTXID: 1n }),
  );
  const pool = pooled ? new PagePool() : null;
  const w = pool ? new BatchedPageWriter(enc, pool) : enc;
  const chunk = new Uint8Array(pageSize * 64);
  let pgno = 1;
  const lock = Math.floor(0x40000000 / pageSize) + 1;
  while (pgno <= commit) {
    let n = 0;
    while (n < chunk.length) {
      const r = await db.read(chunk.subarray(n));
      if (r === null) break;
      n += r;
    }
    for (let off = 0; off + pageSize <= n; off += pageSize, pgno++) {
      if (pgno !== lock) await w.writePage(pgno, chunk.subarray(off, off + pageSize));
    }
    if (n < chunk.length) break;
  }
  if (w instanceof BatchedPageWriter) await w.flush();
  pool?.close();
  const res = await enc.finish();
  const secs = (performance.now() - t0) / 1000;
  out.close();
  db.close();
  console.log(
    JSON.stringify({
      op: pooled ? "encode on workers" : "encode",
      mbPerSec: size / 1e6 / secs,
      seconds: secs,
      ltxBytes: res.size,
      dbBytes: size,
      peakRssMiB: peakRssMiB(),
    }),
  );
}

async function decode(ltxPath: string, dbBytes: number, pooled = false): Promise<void> {
  const f = await Deno.open(ltxPath);
  const t0 = performance.now();
  const dec = new LtxDecoder(f.readable, { file: ltxPath });
  let n = 0;
  if (pooled) {
    // batches on the workers, a few in flight, accepted in order (as a restore does)
    const pool = new PagePool();
    const per = 256;
    const h = await dec.readHeader();
    const inflight: { raw: RawPageBatch; n: number; done: ReturnType<PagePool["decode"]> }[] = [];
    const take = async () => {
      const j = inflight.shift()!;
      const d = await j.done;
      dec.acceptBatch(j.raw, j.n, d.crcHi, d.crcLo, d.failed, d.reason);
      n += j.n;
    };
    while (true) {
      const raw: RawPageBatch = {
        pgno: new Uint32Array(per),
        at: new Int32Array(per),
        len: new Int32Array(per),
        src: new Uint8Array(per * (h.pageSize + 32)),
      };
      const got = await dec.readBatch(raw);
      if (got <= 0) break;
      inflight.push({
        raw,
        n: got,
        done: pool.decode({
          pageSize: h.pageSize,
          src: raw.src,
          at: raw.at.slice(0, got),
          len: raw.len.slice(0, got),
          out: new Uint8Array(got * h.pageSize),
        }),
      });
      if (inflight.length >= pool.depth) await take();
    }
    while (inflight.length) await take();
    await dec.finishPages();
    pool.close();
  } else {
    for (let p = await dec.nextPage(); p; p = await dec.nextPage()) n++;
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      op: pooled ? "decode + verify on workers" : "decode + verify",
      pages: n,
      mbPerSec: dbBytes / 1e6 / secs,
      seconds: secs,
      peakRssMiB: peakRssMiB(),
    }),
  );
}

if (Deno.args[0] === "baseline") {
  console.log(JSON.stringify({ op: "baseline", peakRssMiB: peakRssMiB() }));
} else if (Deno.args[0] === "encode") await encode(Deno.args[1], Deno.args[2]);
else if (Deno.args[0] === "encode-pool") await encode(Deno.args[1], Deno.args[2], true);
else if (Deno.args[0] === "decode") await decode(Deno.args[1], Number(Deno.args[2]));
else if (Deno.args[0] === "decode-pool") await decode(Deno.args[1], Number(Deno.args[2]), true);
else {
  Deno.mkdirSync(dir, { recursive: true });
  const dbPath = join(dir, "text-256m.db");
  const ltxPath = join(dir, "text-256m.ltx");
  makeTextDatabase(dbPath, 256);
  const self = new URL(import.meta.url).pathname;
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", self, ...args],
      stdout: "piped",
    }).output();
    return new TextDecoder().decode(r.stdout).trim();
  };
  const dbBytes = Deno.statSync(dbPath).size;
  const rows: Record<string, number | string>[] = [JSON.parse(await run("baseline"))];
  for (let round = 0; round < 2; round++) {
    for (
      const [op, a, b] of [
        ["encode", dbPath, ltxPath],
        ["encode-pool", dbPath, ltxPath],
        ["decode", ltxPath, String(dbBytes)],
        ["decode-pool", ltxPath, String(dbBytes)],
      ]
    ) {
      const r = JSON.parse(await run(op, a, b));
      console.log(JSON.stringify(r));
      if (round === 1) rows.push(r);
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  const md = `## ${date} — snapshot encode and decode (issue 17)

Machine: ${machine()}. Run with \`deno run -A bench/snapshot_bench.ts\` (part of \`deno task
bench\`): a ${
    (dbBytes / 2 ** 20).toFixed(0)
  } MiB text-like database as one snapshot, each operation in
its own process (second of two rounds). "On workers": batches of 256 pages compressed or decompressed
and checksummed by the WebAssembly page kernel on worker threads (one per core but one); otherwise
page by page on the main thread (LZ4 compression in WebAssembly, decompression in JavaScript).
Decode verifies every page's CRC-64, the file checksum and the snapshot's database checksum.

| operation | MB/s of pages | seconds | peak RSS (MiB) |
| --- | --- | --- | --- |
${
    rows.slice(1).map((r) =>
      `| ${r.op} | ${Number(r.mbPerSec).toFixed(0)} | ${Number(r.seconds).toFixed(2)} | ${
        Number(r.peakRssMiB).toFixed(0)
      } |`
    ).join("\n")
  }

Targets: encode ≥ 400 MB/s, decode + verify ≥ 800 MB/s. A Deno process with nothing loaded peaks at
${Number(rows[0].peakRssMiB).toFixed(0)} MiB here.
`;
  console.log(md);
  await writeBenchSection("snapshot-bench", md);
}

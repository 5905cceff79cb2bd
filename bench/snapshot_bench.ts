/**
 * Encode and decode of a 256 MiB snapshot from a real database file, with
 * throughput and peak memory (each measured in its own child process, so the
 * peak RSS is that of the work alone). Prints a Markdown table row per run.
 */

import { join } from "node:path";
import { makeTextDatabase } from "./sample_db.ts";
import { LtxDecoder, LtxEncoder, makeHeader, writerSink } from "../src/ltx/mod.ts";

const dir = join(Deno.cwd(), ".tmp", "bench");

function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

async function encode(dbPath: string, ltxPath: string): Promise<void> {
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
      if (pgno !== lock) await enc.writePage(pgno, chunk.subarray(off, off + pageSize));
    }
    if (n < chunk.length) break;
  }
  const res = await enc.finish();
  const secs = (performance.now() - t0) / 1000;
  out.close();
  db.close();
  console.log(
    JSON.stringify({
      op: "encode",
      mbPerSec: size / 1e6 / secs,
      seconds: secs,
      ltxBytes: res.size,
      dbBytes: size,
      peakRssMiB: peakRssMiB(),
    }),
  );
}

async function decode(ltxPath: string, dbBytes: number): Promise<void> {
  const f = await Deno.open(ltxPath);
  const t0 = performance.now();
  const dec = new LtxDecoder(f.readable, { file: ltxPath });
  let n = 0;
  for (let p = await dec.nextPage(); p; p = await dec.nextPage()) n++;
  const secs = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      op: "decode",
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
else if (Deno.args[0] === "decode") await decode(Deno.args[1], Number(Deno.args[2]));
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
  console.log(await run("baseline"));
  console.log(await run("encode", dbPath, ltxPath));
  console.log(await run("decode", ltxPath, String(dbBytes)));
}

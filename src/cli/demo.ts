/**
 * `strata demo`: encodes a sample SQLite database as an LTX snapshot, decodes
 * it again and checks every byte and checksum.
 */

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  DatabaseChecksum,
  formatChecksum,
  LtxDecoder,
  LtxEncoder,
  makeHeader,
  pageChecksum,
  writerSink,
} from "../ltx/mod.ts";

export async function runDemo(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(
      "Usage: strata demo\n\nBuilds a sample database, encodes it as LTX and verifies it.",
    );
    return 0;
  }
  const dir = await Deno.makeTempDir({ prefix: "strata-demo-" });
  try {
    const dbPath = join(dir, "sample.db");
    const db = new DatabaseSync(dbPath);
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, created TEXT)");
    const insert = db.prepare("INSERT INTO notes (body, created) VALUES (?, ?)");
    db.exec("BEGIN");
    for (let i = 0; i < 20000; i++) {
      insert.run(
        `note number ${i}: ${"lorem ipsum ".repeat(i % 7)}`,
        new Date(1e12 + i * 1000).toISOString(),
      );
    }
    db.exec("COMMIT");
    db.close();

    const bytes = await Deno.readFile(dbPath);
    const pageSize = new DataView(bytes.buffer).getUint16(16) || 65536;
    const commit = bytes.length / pageSize;
    console.log(`sample database: ${dbPath} (${commit} pages of ${pageSize} bytes)`);

    const ltxPath = join(dir, "0000000000000001-0000000000000001.ltx");
    const out = await Deno.open(ltxPath, { write: true, create: true, truncate: true });
    const enc = new LtxEncoder(
      writerSink(out),
      makeHeader({ pageSize, commit, minTXID: 1n, maxTXID: 1n, timestamp: BigInt(Date.now()) }),
    );
    const lock = Math.floor(0x40000000 / pageSize) + 1;
    for (let p = 1; p <= commit; p++) {
      if (p !== lock) await enc.writePage(p, bytes.subarray((p - 1) * pageSize, p * pageSize));
    }
    const written = await enc.finish();
    out.close();
    console.log(
      `encoded snapshot: ${written.size} bytes (${
        (100 * written.size / bytes.length).toFixed(1)
      }% of the database), post-apply checksum ${formatChecksum(written.postApplyChecksum)}`,
    );

    const file = await Deno.open(ltxPath);
    const dec = new LtxDecoder(file.readable, { file: ltxPath });
    const sum = new DatabaseChecksum();
    let pages = 0;
    for (let p = await dec.nextPage(); p; p = await dec.nextPage()) {
      const original = bytes.subarray((p.pgno - 1) * pageSize, p.pgno * pageSize);
      if (!p.data.every((b, i) => b === original[i])) {
        throw new Error(`page ${p.pgno} differs after decoding`);
      }
      sum.xorBig(pageChecksum(p.pgno, p.data));
      pages++;
    }
    console.log(
      `decoded ${pages} pages: every byte equal, file checksum ${
        formatChecksum(dec.trailer!.fileChecksum)
      } verified`,
    );
    console.log(
      `database checksum recomputed from the pages: ${formatChecksum(sum.value)} (${
        sum.value === written.postApplyChecksum ? "matches" : "MISMATCH"
      })`,
    );
    return sum.value === written.postApplyChecksum ? 0 : 1;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

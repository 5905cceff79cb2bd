/**
 * Crafted LTX headers (issue 15, item 12): a `commit` far beyond what a file
 * carries must not make `strata restore` allocate memory or disk for it, and
 * a restored file larger than its own SQLite header says must not pass as a
 * database. Each case is a file replica holding a real database's snapshot
 * and one crafted file (checksums all consistent), restored by a separate
 * `strata restore` process whose peak memory is measured.
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { PROJECT_ROOT } from "./helpers/vectors.ts";
import { py } from "./helpers/trust.ts";
import {
  DatabaseChecksum,
  databaseChecksumOfPages,
  decodeLtx,
  encodeLtx,
  formatLtxFileName,
  makeHeader,
  pageChecksum,
} from "../src/ltx/mod.ts";

/** Runs `strata ARGS…` and returns its exit code, stderr and peak resident memory (bytes). */
async function strataMeasured(args: string[]) {
  const code = `
import resource, subprocess, sys, json
p = subprocess.run(sys.argv[1:], capture_output=True)
print(json.dumps({"code": p.returncode, "stderr": p.stderr.decode(errors="replace"),
  "maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
`;
  const r = await new Deno.Command("python3", {
    args: ["-c", code, Deno.execPath(), "run", "-A", join(PROJECT_ROOT, "main.ts"), ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
  }).output();
  return JSON.parse(new TextDecoder().decode(r.stdout)) as {
    code: number;
    stderr: string;
    maxrss: number;
  };
}

/**
 * A copy of an LTX file with another header commit and a file checksum to
 * match (the decoder's own computation, read from its complaint).
 */
async function withCommit(file: Uint8Array, commit: number): Promise<Uint8Array> {
  const b = file.slice();
  const dv = new DataView(b.buffer);
  dv.setUint32(12, commit);
  const err = await decodeLtx(b).then(() => null, (e: Error) => e.message);
  const computed = /computed ([0-9a-f]{16})/.exec(err ?? "");
  assert(computed, `no file checksum to patch: ${err}`);
  dv.setBigUint64(b.length - 8, BigInt("0x" + computed[1]));
  return b;
}

Deno.test("crafted LTX commits: bounded memory, no oversized file, refused by name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-crafted-" });
  try {
    const db = join(dir, "src.db");
    await py(
      `import sqlite3, sys, os
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
for i in range(8): c.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(1500),))
c.commit()`,
      db,
    );
    const bytes = await Deno.readFile(db);
    const ps = (bytes[16] << 8) | bytes[17];
    const n = bytes.length / ps;
    const pages = Array.from({ length: n }, (_, i) => bytes.slice(i * ps, (i + 1) * ps));
    const sum = databaseChecksumOfPages(pages, ps);
    const snapshot = await encodeLtx(
      makeHeader({ pageSize: ps, commit: n, minTXID: 1n, maxTXID: 1n }),
      pages.map((data, i) => ({ pgno: i + 1, data })),
      sum,
    );
    const zero = new Uint8Array(ps);
    const grown = new DatabaseChecksum(sum);
    for (let p = n + 1; p <= n + 10; p++) grown.xorBig(pageChecksum(p, zero));

    /** TXID 2 on top of the snapshot, its header's commit as given. */
    const increment = (
      commit: number,
      carried: { pgno: number; data: Uint8Array }[],
      post: bigint,
    ) =>
      encodeLtx(
        makeHeader({ pageSize: ps, commit, minTXID: 2n, maxTXID: 2n, preApplyChecksum: sum }),
        carried,
        post,
      );
    const cases: {
      name: string;
      files: { min: bigint; max: bigint; bytes: Uint8Array }[];
      refused: RegExp;
    }[] = [
      {
        // the database "grows" to 16 GiB: one page carried
        name: "increment claiming 4Mi pages",
        files: [{
          min: 2n,
          max: 2n,
          bytes: await increment(1 << 22, [{ pgno: 2, data: pages[1] }], sum),
        }],
        refused: /0000000000000002-0000000000000002\.ltx.*carries only \d+ of/,
      },
      {
        // per-page arrays sized by the header would take over 1 GB
        name: "increment claiming 128Mi pages",
        files: [{
          min: 2n,
          max: 2n,
          bytes: await increment(1 << 27, [{ pgno: 2, data: pages[1] }], sum),
        }],
        refused: /0000000000000002-0000000000000002\.ltx.*carries only \d+ of/,
      },
      {
        name: "snapshot claiming 128Mi pages",
        files: [],
        refused: /0000000000000001-0000000000000001\.ltx.*snapshot holds/,
      },
      {
        // ten zero pages carried: consistent checksums, but the SQLite header says n pages
        name: "increment growing the file past the SQLite header's page count",
        files: [{
          min: 2n,
          max: 2n,
          bytes: await increment(
            n + 10,
            Array.from({ length: 10 }, (_, i) => ({ pgno: n + 1 + i, data: zero })),
            grown.value,
          ),
        }],
        refused: new RegExp(`header says ${n} pages.*has ${(n + 10) * ps} bytes`),
      },
    ];
    for (const [i, c] of cases.entries()) {
      const rep = join(dir, `rep${i}`);
      await Deno.mkdir(join(rep, "ltx", "0"), { recursive: true });
      const snap = c.name.startsWith("snapshot") ? await withCommit(snapshot, 1 << 27) : snapshot;
      await Deno.writeFile(join(rep, "ltx", "0", formatLtxFileName(1n, 1n)), snap);
      for (const f of c.files) {
        await Deno.writeFile(join(rep, "ltx", "0", formatLtxFileName(f.min, f.max)), f.bytes);
      }
      const out = join(dir, `out${i}.db`);
      const r = await strataMeasured(["restore", "-no-progress", "-o", out, `file://${rep}`]);
      const size = await Deno.stat(out).then((s) => s.size, () => -1);
      console.log(`${c.name}: exit ${r.code}, peak RSS ${(r.maxrss / 2 ** 20).toFixed(0)} MiB`);
      assertEquals(r.code, 1, `${c.name}: restored (${size} bytes): ${r.stderr}`);
      assert(c.refused.test(r.stderr.replaceAll("\n", " ")), `${c.name}: ${r.stderr}`);
      assertEquals(size, -1, `${c.name}: nothing at the output path`);
      assert(r.maxrss < 400 * 2 ** 20, `${c.name}: peak RSS ${r.maxrss} bytes`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Unit tests of the pieces that keep a failing replica loud and moving: the
 * retry backoff (bounded, repeated errors logged again every minute) and the
 * choice of local files to upload whatever the local directory holds
 * (overlapping merge leftovers, gaps).
 */

import { ERROR_REPEAT_MS, RETRY_MAX_MS, RetryBackoff } from "../src/replicate/retry_backoff.ts";
import { chainAfter, redundantFiles } from "../src/replicate/local_chain.ts";
import type { LocalFile } from "../src/capture/mod.ts";
import { assertEquals } from "./helpers/assert.ts";
import { ReplicaIoError } from "../src/storage/os_error.ts";
import { uploadOfMerge } from "../src/replicate/local_merge.ts";

Deno.test("retry backoff: doubles from the sync interval up to RETRY_MAX_MS; a lasting failure is logged loudly again every ERROR_REPEAT_MS", () => {
  const b = new RetryBackoff(100);
  const t0 = 1_000_000;
  const waits: number[] = [];
  const loud: boolean[] = [];
  for (let i = 0; i < 12; i++) {
    const r = b.failed("replica down", t0 + i * 1000);
    waits.push(r.waitMs);
    loud.push(r.loud);
  }
  assertEquals(waits.slice(0, 5), [100, 200, 400, 800, 1600]);
  assertEquals(Math.max(...waits), RETRY_MAX_MS);
  assertEquals(loud, [true, ...new Array(11).fill(false)]);
  assertEquals(b.failed("replica down", t0 + ERROR_REPEAT_MS).loud, true, "again after a minute");
  assertEquals(b.failed("another reason", t0 + ERROR_REPEAT_MS + 1).loud, true, "a new reason");
  b.succeeded();
  assertEquals(b.retryAt, 0);
  assertEquals(b.failed("replica down", t0 + ERROR_REPEAT_MS + 2).waitMs, 100);
});

function files(...ranges: [number, number][]): LocalFile[] {
  return ranges.map(([a, b]) => ({
    minTXID: BigInt(a),
    maxTXID: BigInt(b),
    path: `/meta/${a}-${b}.ltx`,
  }));
}

Deno.test("local chain: overlapping merge leftovers are chained through the farthest file; a gap is reported; leftovers are redundant", () => {
  // 1b-19b and 1b-19c: what two concurrent merges left
  const local = files([1, 10], [0x1b, 0x19b], [0x1b, 0x19c], [0x19d, 0x19d], [0x19e, 0x1a0]);
  const c = chainAfter(local, 0x1an);
  assertEquals(c.files.map((f) => [f.minTXID, f.maxTXID]), [[0x1bn, 0x19cn], [0x19dn, 0x19dn], [
    0x19en,
    0x1a0n,
  ]]);
  assertEquals(c.reaches, 0x1a0n);
  assertEquals(c.newest, 0x1a0n);
  assertEquals(redundantFiles(local).map((f) => f.path), ["/meta/27-411.ltx"]);

  // a gap (a file missing in the middle): the chain stops short, so the replica gets a snapshot
  const gap = chainAfter(files([5, 6], [8, 9]), 4n);
  assertEquals(gap.reaches, 6n);
  assertEquals(gap.newest, 9n);

  // a full copy from TXID 1 continues any position
  const full = chainAfter(files([5, 6], [1, 9], [10, 10]), 4n);
  assertEquals(full.files.map((f) => f.maxTXID), [9n, 10n]);
});

Deno.test("a replica write error names the file and the system's reason (ENOSPC), never the temporary name", () => {
  const cause = Object.assign(
    new Error("No space left on device (os error 28): open '/r/ltx/0/a-b.ltx.1f2e3d4c.tmp'"),
    { code: "ENOSPC" },
  );
  const e = new ReplicaIoError("write", "/r/ltx/0/a-b.ltx", cause);
  assertEquals(
    e.message,
    "/r/ltx/0/a-b.ltx: cannot write: No space left on device (os error 28) [ENOSPC]",
  );
  assertEquals(e.code, "ENOSPC");
});

Deno.test("an upload of a merge that fails before reading the stream rejects at once with the write's error", async () => {
  let pull = 0;
  // a merge that produces only when read: it would wait forever for a reader
  const stream = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      pull++;
      ctrl.enqueue(new Uint8Array(10));
    },
  }, { highWaterMark: 0 });
  const merged = new Promise<void>(() => {}); // never settles without a reader
  const write = Promise.reject(new ReplicaIoError("create", "/r/ltx/0/a-b.ltx", new Error("x")));
  const err = await uploadOfMerge(write, merged).then(() => null, (e) => e as Error);
  assertEquals(err?.message, "/r/ltx/0/a-b.ltx: cannot create: x");
  assertEquals(pull, 0);
  await stream.cancel();
});

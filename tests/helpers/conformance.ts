/**
 * One conformance suite for every storage client. A test file calls
 * `conformanceTests("s3", open)`; each case opens a fresh, empty replica with
 * `open()` and closes it at the end.
 */

import {
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "../../src/storage/client.ts";
import { assert, assertEquals, assertInstanceOf } from "./assert.ts";

export interface OpenedClient {
  client: ReplicaClient;
  close(): Promise<void>;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function testBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A stream of `data` in chunks of `chunk` bytes. */
export function streamOf(data: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (off >= data.length) {
        ctrl.close();
        return;
      }
      const end = Math.min(off + chunk, data.length);
      ctrl.enqueue(data.slice(off, end));
      off = end;
    },
  });
}

/** A stream that yields `data` then errors (as a failing source would). */
export function failingStream(data: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (off >= data.length) {
        ctrl.error(new Error("source failed midway (test)"));
        return;
      }
      const end = Math.min(off + chunk, data.length);
      ctrl.enqueue(data.slice(off, end));
      off = end;
    },
  });
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of stream) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Compares byte arrays without a huge diff on failure. */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assertEquals(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) throw new Error(`${what}: first difference at byte ${i}`);
  }
}

function names(files: ReplicaFile[]): string[] {
  return files.map((f) => `${f.level}:${f.minTXID.toString(16)}-${f.maxTXID.toString(16)}`);
}

async function put(
  c: ReplicaClient,
  level: number,
  min: bigint,
  max: bigint,
  data: Uint8Array,
  createdAt = new Date(),
): Promise<ReplicaFile> {
  return await c.writeFile(level, min, max, streamOf(data), createdAt);
}

/** What a backend cannot do better; the defaults are exact. */
export interface ConformanceOptions {
  /** Granularity of listed creation times (SFTP v3 mtimes are whole seconds: 1000). */
  createdAtResolutionMs?: number;
}

/** Registers the conformance cases for one client. */
export function conformanceTests(
  name: string,
  open: () => Promise<{ client: ReplicaClient; close(): Promise<void> }>,
  opts: ConformanceOptions = {},
): void {
  const res = opts.createdAtResolutionMs ?? 1;
  const listedTime = (d: Date) => Math.floor(d.getTime() / res) * res;
  const t = (what: string, fn: (c: ReplicaClient) => Promise<void>) =>
    Deno.test({
      name: `${name} conformance: ${what}`,
      async fn() {
        const o = await open();
        try {
          await fn(o.client);
        } finally {
          await o.close();
        }
      },
    });

  t("an empty replica lists nothing at any level", async (c) => {
    for (let level = 0; level <= 9; level++) {
      assertEquals(await c.listFiles(level), [], `level ${level}`);
      assertEquals(await c.listFiles(level, 5n), [], `level ${level} with seek`);
    }
  });

  t("write, list and read back", async (c) => {
    const data = testBytes(100_003, 7);
    const createdAt = new Date("2026-03-04T05:06:07.891Z");
    const w = await put(c, 0, 1n, 5n, data, createdAt);
    assertEquals(w.level, 0);
    assertEquals(w.minTXID, 1n);
    assertEquals(w.maxTXID, 5n);
    assertEquals(w.size, data.length);
    assertEquals(w.createdAt.getTime(), createdAt.getTime());
    const list = await c.listFiles(0);
    assertEquals(list.length, 1);
    const f = list[0];
    assertEquals(f.level, 0);
    assertEquals(f.minTXID, 1n);
    assertEquals(f.maxTXID, 5n);
    assertEquals(f.size, data.length);
    assertEquals(f.createdAt.getTime(), listedTime(createdAt), "createdAt round trip");
    assertBytes(await readAll(await c.openFile(0, 1n, 5n)), data, "read back");
    // an empty file is a file too
    await put(c, 0, 6n, 6n, new Uint8Array(0));
    const l2 = await c.listFiles(0);
    assertEquals(names(l2), ["0:1-5", "0:6-6"]);
    assertEquals(l2[1].size, 0);
    assertEquals((await readAll(await c.openFile(0, 6n, 6n))).length, 0);
  });

  t("ranged reads at the start, middle and end", async (c) => {
    const data = testBytes(300_000, 3);
    await put(c, 1, 10n, 20n, data);
    const cases = [
      { offset: 0, length: 1 },
      { offset: 0, length: 4096 },
      { offset: 123_457, length: 65_537 },
      { offset: data.length - 17, length: 17 },
      { offset: data.length - 1, length: 1 },
      { offset: 0, length: data.length },
    ];
    for (const r of cases) {
      const got = await readAll(await c.openFile(1, 10n, 20n, r));
      assertBytes(
        got,
        data.subarray(r.offset, r.offset + r.length),
        `range ${r.offset}+${r.length}`,
      );
    }
  });

  t("listFiles seeks to the first file with minTXID >= seek", async (c) => {
    const d = testBytes(10);
    for (const [a, b] of [[1n, 1n], [2n, 3n], [4n, 4n], [5n, 9n], [0x10n, 0x20n]]) {
      await put(c, 0, a, b, d);
    }
    assertEquals(names(await c.listFiles(0)), ["0:1-1", "0:2-3", "0:4-4", "0:5-9", "0:10-20"]);
    assertEquals(names(await c.listFiles(0, 0n)).length, 5);
    assertEquals(names(await c.listFiles(0, 1n)).length, 5);
    assertEquals(names(await c.listFiles(0, 3n)), ["0:4-4", "0:5-9", "0:10-20"]);
    assertEquals(names(await c.listFiles(0, 4n)), ["0:4-4", "0:5-9", "0:10-20"]);
    assertEquals(names(await c.listFiles(0, 0x10n)), ["0:10-20"]);
    assertEquals(names(await c.listFiles(0, 0x11n)), []);
    assertEquals(names(await c.listFiles(0, 0xffffffffffn)), []);
  });

  t("files are listed in TXID order, big TXIDs included", async (c) => {
    const d = testBytes(3);
    const ranges: [bigint, bigint][] = [
      [0xffffffffffn, 0xffffffffffn],
      [0x9n, 0xan],
      [0x1n, 0x8n],
      [0x100000000n, 0xfffffffffen],
      [0xbn, 0xffffffffn],
      [0x1000000000000n, 0x7fffffffffffffffn],
      [0x10000000000n, 0xffffffffffffn],
    ];
    for (const [a, b] of ranges) await put(c, 2, a, b, d);
    const list = await c.listFiles(2);
    const want = [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : 1));
    assertEquals(list.map((f) => [f.minTXID, f.maxTXID]), want);
    const big = await c.listFiles(2, 0xffffffffffn);
    assertEquals(big.map((f) => f.minTXID), [0xffffffffffn, 0x10000000000n, 0x1000000000000n]);
    assertBytes(
      await readAll(await c.openFile(2, 0x1000000000000n, 0x7fffffffffffffffn)),
      d,
      "big",
    );
  });

  t("levels 0 through 9 are kept apart", async (c) => {
    for (let level = 0; level <= 9; level++) {
      await put(c, level, BigInt(level + 1), BigInt(level + 1), testBytes(level + 1, level));
    }
    for (let level = 0; level <= 9; level++) {
      const list = await c.listFiles(level);
      assertEquals(names(list), [
        `${level}:${(level + 1).toString(16)}-${(level + 1).toString(16)}`,
      ]);
      assertEquals(list[0].size, level + 1);
      const got = await readAll(await c.openFile(level, BigInt(level + 1), BigInt(level + 1)));
      assertBytes(got, testBytes(level + 1, level), `level ${level}`);
    }
    // the same TXIDs at two levels are two files
    await put(c, 3, 1n, 1n, testBytes(33, 99));
    assertEquals(names(await c.listFiles(3)), ["3:1-1", "3:4-4"]);
    assertBytes(await readAll(await c.openFile(0, 1n, 1n)), testBytes(1, 0), "level 0 kept");
  });

  t("writing the same name again replaces the file", async (c) => {
    await put(c, 0, 1n, 2n, testBytes(5000, 1), new Date("2026-01-01T00:00:00.000Z"));
    const second = testBytes(1234, 2);
    await put(c, 0, 1n, 2n, second, new Date("2026-01-02T00:00:00.123Z"));
    const list = await c.listFiles(0);
    assertEquals(list.length, 1);
    assertEquals(list[0].size, second.length);
    assertEquals(
      list[0].createdAt.getTime(),
      listedTime(new Date("2026-01-02T00:00:00.123Z")),
      "createdAt of the second write",
    );
    assertBytes(await readAll(await c.openFile(0, 1n, 2n)), second, "overwritten");
  });

  t("deleteFiles removes files; missing ones are no error", async (c) => {
    const d = testBytes(100);
    await put(c, 0, 1n, 1n, d);
    await put(c, 0, 2n, 2n, d);
    await put(c, 0, 3n, 3n, d);
    await put(c, 1, 1n, 3n, d);
    await c.deleteFiles([]);
    await c.deleteFiles([
      { level: 0, minTXID: 1n, maxTXID: 1n },
      { level: 0, minTXID: 3n, maxTXID: 3n },
      { level: 0, minTXID: 7n, maxTXID: 8n }, // never existed
      { level: 5, minTXID: 1n, maxTXID: 1n }, // nor its level
    ]);
    assertEquals(names(await c.listFiles(0)), ["0:2-2"]);
    assertEquals(names(await c.listFiles(1)), ["1:1-3"]);
    await c.deleteFiles([{ level: 0, minTXID: 1n, maxTXID: 1n }]); // again
    await c.deleteFiles([{ level: 0, minTXID: 2n, maxTXID: 2n }]);
    assertEquals(await c.listFiles(0), []);
    // many at once
    const many = [];
    for (let i = 1n; i <= 30n; i++) {
      await put(c, 4, i, i, d.subarray(0, 3));
      many.push({ level: 4, minTXID: i, maxTXID: i });
    }
    assertEquals((await c.listFiles(4)).length, 30);
    await c.deleteFiles(many);
    assertEquals(await c.listFiles(4), []);
    assertEquals(names(await c.listFiles(1)), ["1:1-3"]);
  });

  t("reading a missing file is ReplicaFileNotFoundError", async (c) => {
    const expectMissing = async (
      level: number,
      a: bigint,
      b: bigint,
      range?: { offset: number; length: number },
    ) => {
      let err: unknown = null;
      try {
        await readAll(await c.openFile(level, a, b, range));
      } catch (e) {
        err = e;
      }
      assertInstanceOf(err, ReplicaFileNotFoundError, `missing ${level}:${a}-${b}`);
    };
    await expectMissing(0, 1n, 1n);
    await put(c, 0, 1n, 1n, testBytes(10));
    await expectMissing(0, 1n, 2n);
    await expectMissing(1, 1n, 1n);
    await expectMissing(0, 2n, 2n, { offset: 0, length: 5 });
    await c.deleteFiles([{ level: 0, minTXID: 1n, maxTXID: 1n }]);
    await expectMissing(0, 1n, 1n);
  });

  t("a write whose source fails midway leaves no file", async (c) => {
    await put(c, 0, 1n, 1n, testBytes(10, 1));
    for (const size of [0, 1000, 300_000]) {
      let err: unknown = null;
      try {
        await c.writeFile(0, 2n, 2n, failingStream(testBytes(size, 5)), new Date());
      } catch (e) {
        err = e;
      }
      assert(err instanceof Error, `a failed source (${size} bytes) must fail the write`);
      assertEquals(names(await c.listFiles(0)), ["0:1-1"], `after a failed ${size}-byte write`);
    }
    // a failed overwrite keeps the old file intact
    const old = testBytes(2000, 8);
    await put(c, 0, 3n, 3n, old);
    await c.writeFile(0, 3n, 3n, failingStream(testBytes(500_000, 9)), new Date()).then(
      () => {
        throw new Error("the write should fail");
      },
      () => {},
    );
    const list = await c.listFiles(0);
    assertEquals(names(list), ["0:1-1", "0:3-3"]);
    assertEquals(list[1].size, old.length);
    assertBytes(await readAll(await c.openFile(0, 3n, 3n)), old, "old file after failed overwrite");
  });

  t("a large file (20 MiB) round trips", async (c) => {
    const data = testBytes(20 * 1024 * 1024 + 12_345, 11);
    const w = await c.writeFile(9, 1n, 0x1234n, streamOf(data, 1 << 20), new Date());
    assertEquals(w.size, data.length);
    const list = await c.listFiles(9);
    assertEquals(names(list), ["9:1-1234"]);
    assertEquals(list[0].size, data.length);
    assertBytes(await readAll(await c.openFile(9, 1n, 0x1234n)), data, "large file");
    const r = { offset: 15 * 1024 * 1024 - 100, length: 10_000 };
    assertBytes(
      await readAll(await c.openFile(9, 1n, 0x1234n, r)),
      data.subarray(r.offset, r.offset + r.length),
      "large file range",
    );
  });
}

/** Reading planned files ahead: same bytes, bounded memory, errors at the file's turn. */

import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { PrefetchingReplicaClient } from "../src/restore/prefetch.ts";
import {
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "../src/storage/mod.ts";

function file(i: number, size: number): ReplicaFile {
  return { level: 0, minTXID: BigInt(i), maxTXID: BigInt(i), size, createdAt: new Date(0) };
}

/** Files of given contents; records how many bytes are being read at once. */
function memory(contents: Map<bigint, Uint8Array>) {
  const stats = { opened: [] as bigint[], reading: 0, maxReading: 0 };
  const client: ReplicaClient = {
    type: "memory",
    location: "memory:",
    listFiles: () => Promise.resolve([]),
    openFile(_level, min) {
      const bytes = contents.get(min);
      if (!bytes) return Promise.reject(new ReplicaFileNotFoundError("memory:", `${min}`));
      stats.opened.push(min);
      stats.reading += bytes.length;
      stats.maxReading = Math.max(stats.maxReading, stats.reading);
      let at = 0;
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          async pull(c) {
            await new Promise((r) => setTimeout(r, 1));
            if (at >= bytes.length) {
              stats.reading -= bytes.length;
              return c.close();
            }
            c.enqueue(bytes.slice(at, at + 1000));
            at += 1000;
          },
        }),
      );
    },
    writeFile: () => Promise.reject(new Error("read-only")),
    deleteFiles: () => Promise.reject(new Error("read-only")),
  };
  return { client, stats };
}

async function read(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("prefetch: every file read ahead arrives whole; never more than the budget ahead", async () => {
  const contents = new Map<bigint, Uint8Array>();
  const plan: ReplicaFile[] = [];
  for (let i = 1; i <= 8; i++) {
    const b = crypto.getRandomValues(new Uint8Array(3000 + i * 1000));
    contents.set(BigInt(i), b);
    plan.push(file(i, b.length));
  }
  const { client, stats } = memory(contents);
  const p = new PrefetchingReplicaClient(client, plan, 20_000);
  for (const f of plan) {
    const got = await read(await p.openFile(f.level, f.minTXID, f.maxTXID));
    assertEquals(got, contents.get(f.minTXID), `file ${f.minTXID}`);
  }
  assert(stats.maxReading <= 20_000 + 11_000, `read ahead ${stats.maxReading} bytes at once`);
  assertEquals(stats.opened.length, 8);
});

Deno.test("prefetch: a file larger than listed is read again in its turn; a missing one fails in its turn", async () => {
  const big = crypto.getRandomValues(new Uint8Array(9000));
  const ok = crypto.getRandomValues(new Uint8Array(2000));
  const contents = new Map([[1n, big], [2n, ok]]);
  const { client } = memory(contents);
  // file 1 listed at 4000 bytes but holding 9000; file 3 is listed but gone
  const plan = [file(1, 4000), file(2, 2000), file(3, 500)];
  const p = new PrefetchingReplicaClient(client, plan, 100_000);
  assertEquals(await read(await p.openFile(0, 1n, 1n)), big);
  assertEquals(await read(await p.openFile(0, 2n, 2n)), ok);
  await assertRejects(() => p.openFile(0, 3n, 3n), ReplicaFileNotFoundError);
});

/**
 * abs under failures: the fault-injecting proxy between the client and
 * its emulator answers some requests with connection resets, 500s and 503s.
 * Every operation must still succeed (the clients retry), and what is read
 * back must be exactly what was written.
 */

import { AbsReplicaClient } from "../src/storage/abs_client.ts";
import { GcsReplicaClient } from "../src/storage/gcs_client.ts";
import { startGcsEmulator } from "./helpers/gcs_emulator.ts";
import type { ReplicaClient } from "../src/storage/client.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { assertBytes, readAll, streamOf, testBytes } from "./helpers/conformance.ts";
import { DEV_ACCOUNT, DEV_KEY, startAzurite } from "./helpers/azurite.ts";
import { type Fault, startFaultProxy } from "./helpers/fault_proxy.ts";

const FAST = { attempts: 8, baseDelayMs: 20, maxDelayMs: 200 };

/** Faults on every third request: reset, 500, 503 in turn. */
function everyThird(): () => Fault {
  const kinds: Fault[] = ["reset", "500", "503"];
  let n = 0;
  return () => (n++ % 3 === 1 ? kinds[Math.floor(n / 3) % 3] : "none");
}

async function exercise(c: ReplicaClient) {
  const sizes = [0, 10, 70_000, 300_000];
  for (let i = 0; i < sizes.length; i++) {
    const txid = BigInt(i + 1);
    await c.writeFile(0, txid, txid, streamOf(testBytes(sizes[i], i + 1)), new Date(1e12 + i));
  }
  const list = await c.listFiles(0);
  assertEquals(list.map((f) => f.size), sizes);
  for (let i = 0; i < sizes.length; i++) {
    const txid = BigInt(i + 1);
    assertBytes(
      await readAll(await c.openFile(0, txid, txid)),
      testBytes(sizes[i], i + 1),
      `#${i}`,
    );
  }
  const r = { offset: 1000, length: 5000 };
  assertBytes(
    await readAll(await c.openFile(0, 4n, 4n, r)),
    testBytes(300_000, 4).subarray(1000, 6000),
    "range",
  );
  await c.deleteFiles(list);
  assertEquals(await c.listFiles(0), []);
}

Deno.test("abs faults: resets, 500s and 503s are retried; data is exact", async () => {
  const azurite = await startAzurite();
  const proxy = startFaultProxy(`http://127.0.0.1:${azurite.port}`, 500);
  try {
    const az = await import("@azure/storage-blob");
    await new az.BlobServiceClient(
      azurite.endpoint,
      new az.StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
    ).getContainerClient("faults").create();
    proxy.choose = everyThird();
    const c = new AbsReplicaClient({
      type: "abs",
      accountName: DEV_ACCOUNT,
      accountKey: DEV_KEY,
      endpoint: `${proxy.endpoint}/${DEV_ACCOUNT}`,
      container: "faults",
      path: "db",
    }, { retry: FAST });
    await exercise(c);
    assert(proxy.counts.reset + proxy.counts["500"] + proxy.counts["503"] >= 5, "faults injected");
  } finally {
    await proxy.stop();
    await azurite.stop();
  }
});

Deno.test("gs faults: resets, 500s and 503s are retried; data is exact", async () => {
  const emu = await startGcsEmulator();
  const proxy = startFaultProxy(emu.host, 500);
  try {
    proxy.choose = everyThird();
    const c = new GcsReplicaClient({ type: "gs", bucket: "faults", path: "db" }, {
      retry: FAST,
      storageOptions: { apiEndpoint: proxy.endpoint, projectId: "demo-strata" },
    });
    await exercise(c);
    // a file larger than the in-memory limit goes through a temporary file: each failed
    // request is retried from its start
    const big = testBytes(9 * 1024 * 1024, 9);
    let failed = 0;
    proxy.choose = (r) => r.method === "POST" && failed++ < 2 ? "reset" : "none";
    await c.writeFile(0, 9n, 9n, streamOf(big), new Date(1e12));
    assertEquals(failed, 3); // two resets, then the upload that went through
    assertBytes(await readAll(await c.openFile(0, 9n, 9n)), big, "9 MiB");
    assert(proxy.counts.reset + proxy.counts["500"] + proxy.counts["503"] >= 5, "faults injected");
  } finally {
    await proxy.stop();
    await emu.stop();
  }
});

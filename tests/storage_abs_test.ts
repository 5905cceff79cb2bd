/** The abs client against Azurite (Microsoft's emulator), started by the tests on 127.0.0.1. */

import type { AbsReplicaConfig } from "../src/config/abs_config.ts";
import { ABS_TIMESTAMP_KEY, AbsReplicaClient } from "../src/storage/abs_client.ts";
import { PermanentStorageError } from "../src/storage/remote_util.ts";
import { assertEquals, assertMatch, assertRejects } from "./helpers/assert.ts";
import { conformanceTests, streamOf, testBytes } from "./helpers/conformance.ts";
import { type Azurite, DEV_ACCOUNT, DEV_KEY, startAzurite } from "./helpers/azurite.ts";

async function createContainer(a: Azurite, name: string) {
  const az = await import("@azure/storage-blob");
  const svc = new az.BlobServiceClient(
    a.endpoint,
    new az.StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
  );
  await svc.getContainerClient(name).create();
  return svc.getContainerClient(name);
}

function cfgFor(a: Azurite, extra: Partial<AbsReplicaConfig> = {}): AbsReplicaConfig {
  return {
    type: "abs",
    accountName: DEV_ACCOUNT,
    accountKey: DEV_KEY,
    endpoint: a.endpoint,
    container: "replicas",
    path: "dbs/app",
    ...extra,
  };
}

conformanceTests("abs", async () => {
  const azurite = await startAzurite();
  await createContainer(azurite, "replicas");
  const client = new AbsReplicaClient(cfgFor(azurite));
  return {
    client,
    async close() {
      await client.close();
      await azurite.stop();
    },
  };
});

Deno.test("abs: Litestream's layout and metadata; a missing container and a wrong key are clear errors", async () => {
  const azurite = await startAzurite();
  try {
    const cc = await createContainer(azurite, "replicas");
    const c = new AbsReplicaClient(cfgFor(azurite));
    const t = new Date("2025-06-07T08:09:10.450Z");
    await c.writeFile(3, 0x10n, 0x2an, streamOf(testBytes(5000)), t);
    const names: string[] = [];
    for await (const b of cc.listBlobsFlat({ includeMetadata: true })) {
      names.push(b.name);
      assertEquals(b.metadata?.[ABS_TIMESTAMP_KEY], "2025-06-07T08:09:10.45Z");
      assertEquals(b.properties.contentType, "application/octet-stream");
      assertEquals(b.properties.contentLength, 5000);
    }
    assertEquals(names, ["dbs/app/ltx/3/0000000000000010-000000000000002a.ltx"]);
    // a blob written by another tool without metadata: its creation time is used
    await cc.getBlockBlobClient("dbs/app/ltx/3/0000000000000030-0000000000000030.ltx").upload(
      "x",
      1,
    );
    const list = await c.listFiles(3);
    assertEquals(list.map((f) => f.createdAt.getTime() > 0), [true, true]);
    assertEquals(list[0].createdAt.toISOString(), t.toISOString());

    const missing = new AbsReplicaClient(cfgFor(azurite, { container: "nope-not-here" }));
    const e = await assertRejects(() => missing.listFiles(0), PermanentStorageError);
    assertMatch(e.message, /container nope-not-here: the container does not exist.*HTTP 404/);
    const w = await assertRejects(
      () => missing.writeFile(0, 1n, 1n, streamOf(testBytes(10)), new Date()),
      PermanentStorageError,
    );
    assertMatch(w.message, /does not exist/);

    const wrongKey = new AbsReplicaClient(
      cfgFor(azurite, { accountKey: btoa("not the key at all, not at all!!") }),
    );
    const t0 = Date.now();
    const a = await assertRejects(() => wrongKey.listFiles(0), PermanentStorageError);
    assertMatch(a.message, /access denied: list dbs\/app\/ltx\/0\/ \(HTTP 403/);
    assertEquals(Date.now() - t0 < 5000, true, "not retried");
  } finally {
    await azurite.stop();
  }
});

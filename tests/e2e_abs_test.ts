/** End to end to Azure Blob Storage, against Azurite started on 127.0.0.1. */

import { assert, assertMatch } from "./helpers/assert.ts";
import { replicateAndRestoreLatest } from "./helpers/e2e_remote.ts";
import { DEV_ACCOUNT, DEV_KEY, startAzurite } from "./helpers/azurite.ts";

Deno.test("e2e abs: replicate while an app writes, restore latest exactly", async () => {
  const azurite = await startAzurite();
  try {
    const az = await import("@azure/storage-blob");
    const cc = new az.BlobServiceClient(
      azurite.endpoint,
      new az.StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
    ).getContainerClient("backups");
    await cc.create();
    // the account key from the environment, as Litestream reads it
    await replicateAndRestoreLatest(
      `url: abs://${DEV_ACCOUNT}@backups/prod/app
endpoint: ${azurite.endpoint}`,
      { LITESTREAM_AZURE_ACCOUNT_KEY: DEV_KEY },
    );
    const names: string[] = [];
    for await (const b of cc.listBlobsFlat({ prefix: "prod/app/ltx/0/" })) names.push(b.name);
    assert(names.length > 0);
    names.forEach((n) => assertMatch(n, /^prod\/app\/ltx\/0\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/));
  } finally {
    await azurite.stop();
  }
});

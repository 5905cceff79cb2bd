/**
 * The gs client against the Cloud Storage for Firebase emulator (GCS JSON
 * API), started by the tests on 127.0.0.1 and reached via STORAGE_EMULATOR_HOST.
 */

import { GCS_TIMESTAMP_KEY, GcsReplicaClient } from "../src/storage/gcs_client.ts";
import { assertEquals } from "./helpers/assert.ts";
import { conformanceTests, streamOf, testBytes } from "./helpers/conformance.ts";
import { startGcsEmulator } from "./helpers/gcs_emulator.ts";

async function open(path = "dbs/app") {
  const emu = await startGcsEmulator();
  const client = new GcsReplicaClient({ type: "gs", bucket: "strata-test", path }, {
    storageOptions: { apiEndpoint: emu.host, projectId: "demo-strata" },
  });
  return { emu, client };
}

conformanceTests("gs", async () => {
  const { emu, client } = await open();
  return {
    client,
    async close() {
      await client.close();
      await emu.stop();
    },
  };
});

Deno.test("gs: Litestream's object names and litestream-timestamp metadata", async () => {
  const { emu, client } = await open();
  try {
    await client.writeFile(
      3,
      0x10n,
      0x2an,
      streamOf(testBytes(5000)),
      new Date("2025-06-07T08:09:10.450Z"),
    );
    const res = await fetch(`${emu.host}/storage/v1/b/strata-test/o?prefix=dbs/`);
    const body = await res.json() as {
      items: { name: string; size: string; metadata?: Record<string, string> }[];
    };
    assertEquals(body.items.map((i) => i.name), [
      "dbs/app/ltx/3/0000000000000010-000000000000002a.ltx",
    ]);
    assertEquals(body.items[0].size, "5000");
    assertEquals(body.items[0].metadata?.[GCS_TIMESTAMP_KEY], "2025-06-07T08:09:10.45Z");
  } finally {
    await client.close();
    await emu.stop();
  }
});

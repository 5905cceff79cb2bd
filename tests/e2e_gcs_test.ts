/** End to end to Google Cloud Storage, against the emulator (STORAGE_EMULATOR_HOST) on 127.0.0.1. */

import { assert, assertMatch } from "./helpers/assert.ts";
import { replicateAndRestoreLatest } from "./helpers/e2e_remote.ts";
import { startGcsEmulator } from "./helpers/gcs_emulator.ts";

Deno.test("e2e gs: replicate while an app writes, restore latest exactly", async () => {
  const emu = await startGcsEmulator();
  try {
    await replicateAndRestoreLatest("url: gs://strata-e2e/prod/app", {
      STORAGE_EMULATOR_HOST: emu.host,
    });
    const res = await fetch(`${emu.host}/storage/v1/b/strata-e2e/o?prefix=prod/app/ltx/0/`);
    const names = ((await res.json()).items as { name: string }[]).map((i) => i.name);
    assert(names.length > 0);
    names.forEach((n) => assertMatch(n, /^prod\/app\/ltx\/0\/[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/));
  } finally {
    await emu.stop();
  }
});

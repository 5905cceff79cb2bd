/**
 * Replica errors say which file and why: a full disk names the replica file
 * and ENOSPC (never "Writable stream is closed or errored.", never a random
 * temporary name that defeats log de-duplication), and the replica catches
 * up once there is room. strata and the app run as separate processes; the
 * full disk is a small tmpfs (skipped where mounting is not allowed).
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { assert, assertMatch } from "./helpers/assert.ts";
import { App, createAppDb, LiveStrata, run, waitFor, waitForReplicaEqual } from "./helpers/live.ts";

Deno.test("a full replica disk: the error names the replica file and ENOSPC; it catches up with room again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-enospc-" });
  const rep = join(dir, "rep");
  await Deno.mkdir(rep);
  if (Deno.uid() !== 0 || !(await run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", rep))) {
    console.log("skipped: cannot mount a small tmpfs here");
    await Deno.remove(dir, { recursive: true });
    return;
  }
  const db = join(dir, "app.db");
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `levels:
  - interval: 2s
dbs:
  - path: ${db}
    monitor-interval: 50ms
    replicas:
      - type: file
        path: ${rep}/app
        sync-interval: 100ms
`,
  );
  const app = new App(db, 0.005);
  const proc = new LiveStrata(["-config", cfg]);
  let stopped = false;
  let mounted = true;
  try {
    await waitFor("the disk to fill up", () => /No space left on device/.test(proc.log));
    const line = proc.log.split("\n").find((l) => /No space left on device/.test(l))!;
    assertMatch(line, new RegExp(`${rep}/app/ltx/\\d+/[0-9a-f]{16}-[0-9a-f]{16}\\.ltx: cannot`));
    assertMatch(line, /ENOSPC/);
    assert(!/\.tmp/.test(line), `a temporary name in: ${line}`);
    assert(!/Writable stream is closed/.test(proc.log), "the stream's error won over the cause");
    await app.stop();
    // room again: the replica catches up (a new, bigger filesystem over the full one)
    await run("umount", "-l", rep);
    mounted = false;
    // (a retry waits up to 30 s after many failures; the emptied replica is re-seeded)
    await waitForReplicaEqual(new FileReplicaClient(join(rep, "app")), db, dir, 120_000);
    const { code, log } = await proc.stop();
    stopped = true;
    assert(code === 0, `strata exited ${code}: ${log.slice(-2000)}`);
  } finally {
    await app.stop();
    if (!stopped) await proc.stop();
    if (mounted) await run("umount", "-l", rep);
    await Deno.remove(dir, { recursive: true });
  }
});

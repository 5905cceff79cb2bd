/**
 * Stopping with a replica that cannot take the last commits: the exit code
 * is non-zero and the log names the replica and the TXIDs it lacks; a
 * replica that holds connections open (a network blackhole) cannot hold up
 * the exit past shutdown-sync-timeout. strata and the app run as separate
 * processes.
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { assert, assertMatch } from "./helpers/assert.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { startFaultProxy } from "./helpers/fault_proxy.ts";
import {
  App,
  createAppDb,
  LiveStrata,
  replicaDigest,
  run,
  s3TestClient,
  waitFor,
} from "./helpers/live.ts";

Deno.test("SIGTERM with a replica that cannot be written: exit code 1, the log names the replica and the TXIDs it lacks", async () => {
  if (Deno.uid() !== 0) {
    console.log("skipped: needs root (chattr) to make a directory read-only for root");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "strata-shutdown-" });
  const db = join(dir, "app.db");
  const good = join(dir, "good");
  const bad = join(dir, "bad");
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `dbs:
  - path: ${db}
    monitor-interval: 50ms
    replicas:
      - type: file
        path: ${good}
        sync-interval: 100ms
      - type: file
        path: ${bad}
        sync-interval: 100ms
`,
  );
  const app = new App(db);
  const strata = new LiveStrata(["-config", cfg]);
  let stopped = false;
  const levelDir = join(bad, "ltx", "0");
  try {
    await waitFor(
      "the replica to receive commits",
      async () => (await replicaDigest(new FileReplicaClient(bad), dir)) !== null,
    );
    // the replica's level directory refuses new files from now on
    assert(await run("chattr", "+i", levelDir), "chattr +i");
    await new Promise((r) => setTimeout(r, 1500)); // the app commits on meanwhile
    await app.stop();
    const { code, log } = await strata.stop("SIGTERM");
    stopped = true;
    assert(code !== 0, `strata exited 0 though ${bad} lacks commits:\n${log.slice(-3000)}`);
    assertMatch(
      log,
      new RegExp(
        `ERROR final sync: committed transactions did not reach a replica.*${bad}.*lacks=`,
      ),
    );
    assert(!log.includes(`${good} lacks`), "the healthy replica got everything");
  } finally {
    await run("chattr", "-i", levelDir);
    await app.stop();
    if (!stopped) await strata.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM while the S3 endpoint holds every connection open: exits within shutdown-sync-timeout, non-zero, naming the replica", async () => {
  const s3 = await startS3Server();
  const proxy = startFaultProxy(s3.endpoint, 600_000);
  const dir = await Deno.makeTempDir({ prefix: "strata-blackhole-" });
  const db = join(dir, "app.db");
  await createAppDb(db);
  const bucket = await s3.createBucket();
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `shutdown-sync-timeout: 2s
dbs:
  - path: ${db}
    monitor-interval: 50ms
    replicas:
      - type: s3
        bucket: ${bucket}
        path: app
        endpoint: ${proxy.endpoint}
        force-path-style: true
        sync-interval: 100ms
`,
  );
  const app = new App(db);
  const strata = new LiveStrata(["-config", cfg], TEST_CREDENTIALS);
  let stopped = false;
  try {
    const direct = s3TestClient(s3.endpoint, bucket);
    await waitFor(
      "the replica to receive commits",
      async () => (await replicaDigest(direct, dir)) !== null,
    );
    proxy.choose = () => "stall"; // every request from now on hangs
    await new Promise((r) => setTimeout(r, 1500)); // the app commits on; uploads hang
    await app.stop();
    const t0 = Date.now();
    const { code, log } = await strata.stop("SIGTERM");
    stopped = true;
    const took = Date.now() - t0;
    console.log(`stop took ${took} ms (shutdown-sync-timeout 2s)`);
    assert(took < 2000 + 15_000, `stop took ${took} ms with shutdown-sync-timeout 2s`);
    assert(code !== 0, `strata exited 0 though the replica lacks commits:\n${log.slice(-3000)}`);
    assertMatch(
      log,
      new RegExp(
        `final sync: committed transactions did not reach a replica.*${bucket}.*shutdown-sync-timeout`,
      ),
    );
  } finally {
    await app.stop();
    if (!stopped) await strata.stop("SIGKILL");
    await proxy.stop();
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

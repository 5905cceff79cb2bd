/**
 * A replica whose contents vanish while strata runs (a directory emptied, a
 * bucket deleted and recreated) is noticed and re-seeded with a snapshot:
 * after a bounded time a restore from it equals the app's latest state, and
 * the log names the re-seed. strata and the app run as separate processes.
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import type { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { assert, assertMatch } from "./helpers/assert.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { strata } from "./helpers/strata.ts";
import {
  App,
  createAppDb,
  LiveStrata,
  replicaDigest,
  s3TestClient,
  waitFor,
  waitForReplicaEqual,
} from "./helpers/live.ts";

function config(db: string, replica: string): string {
  return `levels:
  - interval: 1s
dbs:
  - path: ${db}
    monitor-interval: 50ms
    replicas:
${replica}`;
}

async function scenario(opts: {
  replicaYaml: string;
  client: ReplicaClient;
  vanish: () => Promise<void>;
}): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-vanish-" });
  const db = join(dir, "app.db");
  await createAppDb(db);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(cfg, config(db, opts.replicaYaml));
  const app = new App(db, 0.02);
  const proc = new LiveStrata(["-config", cfg], TEST_CREDENTIALS);
  let stopped = false;
  try {
    await waitFor(
      "the replica to be restorable",
      async () => (await replicaDigest(opts.client, dir)) !== null,
    );
    // an L1 file from TXID 1 is the base of the chain from now on (before it, the
    // first L1 compaction would rebuild the base from local files by itself)
    await waitFor("an L1 file", async () => (await opts.client.listFiles(1)).length > 0);
    await opts.vanish();
    if (Deno.env.get("STRATA_TEST_DEBUG")) {
      console.error(`vanished at ${new Date().toISOString()}`, await opts.client.listFiles(1));
    }
    // the app goes on; strata must notice and make the replica restorable again
    await waitFor("the re-seed in the log", () => /re-seeding it with a snapshot/.test(proc.log));
    await app.stop();
    await waitForReplicaEqual(opts.client, db, dir);
    // status (reading the replica) says how far behind it is, never "behind 0" while unrestorable
    const st = await strata(["status", "-config", cfg, "-json"], { env: TEST_CREDENTIALS });
    assert(st.code === 0, st.stderr);
    const rep = JSON.parse(st.stdout)[0].replicas[0];
    assert(rep.notRestorable === null, `status: ${st.stdout}`);
    const { code, log } = await proc.stop();
    stopped = true;
    assert(code === 0, `strata exited ${code}:\n${log.slice(-3000)}`);
    assertMatch(log, /replica lost its files|replica is not restorable/);
  } catch (e) {
    if (!stopped) {
      console.error(proc.log.slice(-5000));
      if (Deno.env.get("STRATA_TEST_DEBUG")) {
        await Deno.writeTextFile("/tmp/h4-last-strata.log", proc.log);
      }
    }
    throw e;
  } finally {
    await app.stop();
    if (!stopped) await proc.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

type ReplicaClient = FileReplicaClient | S3ReplicaClient;

Deno.test("a file replica emptied while strata runs is re-seeded: the restore equals the app's latest state", async () => {
  const rep = await Deno.makeTempDir({ prefix: "strata-vanish-rep-" });
  try {
    await scenario({
      replicaYaml: `      - type: file\n        path: ${rep}\n        sync-interval: 100ms\n`,
      client: new FileReplicaClient(rep),
      async vanish() {
        for await (const e of Deno.readDir(rep)) {
          await Deno.remove(join(rep, e.name), { recursive: true });
        }
      },
    });
  } finally {
    await Deno.remove(rep, { recursive: true }).catch(() => {});
  }
});

Deno.test("an S3 bucket deleted and recreated while strata runs is re-seeded: the restore equals the app's latest state", async () => {
  const s3 = await startS3Server();
  try {
    const bucket = await s3.createBucket();
    const client = s3TestClient(s3.endpoint, bucket);
    await scenario({
      replicaYaml:
        `      - type: s3\n        bucket: ${bucket}\n        path: app\n        endpoint: ${s3.endpoint}\n        force-path-style: true\n        sync-interval: 100ms\n`,
      client,
      async vanish() {
        // every object, then the bucket (strata writes on: again until it is gone), then a
        // new bucket of the same name
        let status = 0;
        for (let attempt = 0; attempt < 50 && status !== 204; attempt++) {
          const list = await (await fetch(`${s3.endpoint}/${bucket}?list-type=2`)).text();
          for (const m of list.matchAll(/<Key>([^<]+)<\/Key>/g)) {
            await (await fetch(`${s3.endpoint}/${bucket}/${m[1]}`, { method: "DELETE" })).body
              ?.cancel();
          }
          const del = await fetch(`${s3.endpoint}/${bucket}`, { method: "DELETE" });
          await del.body?.cancel();
          status = del.status;
        }
        assert(status === 204, `delete bucket: HTTP ${status}`);
        const put = await fetch(`${s3.endpoint}/${bucket}`, { method: "PUT" });
        await put.body?.cancel();
        assert(put.ok, `create bucket: HTTP ${put.status}`);
      },
    });
  } finally {
    await s3.stop();
  }
});

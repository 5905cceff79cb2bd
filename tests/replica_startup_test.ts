/**
 * A bad replica at start-up (a read-only directory, an S3 endpoint refusing
 * connections, a missing bucket) does not hold up the database: capture and
 * the healthy replica start at once, the bad one retries, says why, and
 * catches up once fixed. strata and the app run as separate processes.
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import type { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { assert, assertMatch } from "./helpers/assert.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import {
  App,
  createAppDb,
  LiveStrata,
  replicaDigest,
  run,
  s3TestClient,
  waitFor,
  waitForReplicaEqual,
} from "./helpers/live.ts";

/** Makes `dir` refuse new entries (immutable for root, 0555 otherwise); false when impossible. */
async function makeReadOnly(dir: string): Promise<boolean> {
  if (Deno.uid() === 0) return await run("chattr", "+i", dir);
  await Deno.chmod(dir, 0o555);
  return true;
}

async function makeWritable(dir: string): Promise<void> {
  if (Deno.uid() === 0) await run("chattr", "-i", dir);
  else await Deno.chmod(dir, 0o755);
}

function config(db: string, good: string, bad: string): string {
  return `dbs:
  - path: ${db}
    monitor-interval: 50ms
    replicas:
      - type: file
        path: ${good}
        sync-interval: 100ms
${bad}`;
}

/** A TCP forwarder from `port` to `target` (the "fixed" endpoint). */
function forward(port: number, target: number): { close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const c of listener) {
      conns.add(c);
      Deno.connect({ hostname: "127.0.0.1", port: target }).then((u) => {
        conns.add(u);
        c.readable.pipeTo(u.writable).catch(() => {});
        u.readable.pipeTo(c.writable).catch(() => {});
      }).catch(() => c.close());
    }
  })().catch(() => {});
  return {
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Case {
  name: string;
  /** The bad replica's config lines, its client, and how to fix it. */
  setup(
    dir: string,
  ): Promise<
    {
      yaml: string;
      client: () => ReplicaClientLike;
      fix(): Promise<void>;
      cleanup(): Promise<void>;
    } | null
  >;
  /** What the log must say about the bad replica. */
  why: RegExp;
}

type ReplicaClientLike = FileReplicaClient | S3ReplicaClient;

async function scenario(c: Case): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-startup-" });
  const db = join(dir, "app.db");
  const good = join(dir, "good");
  await createAppDb(db);
  const bad = await c.setup(dir);
  if (!bad) {
    console.log(`skipped: ${c.name} cannot be set up here`);
    await Deno.remove(dir, { recursive: true });
    return;
  }
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(cfg, config(db, good, bad.yaml));
  const app = new App(db);
  const strata = new LiveStrata(["-config", cfg], {
    ...TEST_CREDENTIALS,
    ...(Deno.env.get("H4_DEBUG") ? { LOG_LEVEL: "debug" } : {}),
  });
  let stopped = false;
  try {
    const goodClient = new FileReplicaClient(good);
    await waitFor(
      "the healthy replica to receive commits",
      async () => (await replicaDigest(goodClient, dir)) !== null,
    );
    await waitFor("the log to say why the bad replica fails", () => c.why.test(strata.log));
    await app.stop();
    await waitForReplicaEqual(goodClient, db, dir);
    await bad.fix();
    await waitForReplicaEqual(bad.client(), db, dir, 90_000);
    const { code, log } = await strata.stop();
    stopped = true;
    assert(code === 0, `strata exited ${code}: ${log.slice(-3000)}`);
    // errors name stable files (log de-duplication works), never a random temporary name
    const tmpNamed = log.split("\n").filter((l) => /ERROR.*\.tmp\b/.test(l));
    assert(tmpNamed.length === 0, `temporary names in errors:\n${tmpNamed.join("\n")}`);
  } catch (e) {
    if (!stopped) console.error(strata.log.slice(-6000));
    throw e;
  } finally {
    await app.stop();
    if (!stopped) await strata.stop();
    await bad.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("start-up with a read-only directory replica: capture and the healthy replica go on; it catches up once writable", async () => {
  await scenario({
    name: "read-only directory",
    why: /sync failed.*(denied|not permitted)/is,
    async setup(dir) {
      const bad = join(dir, "readonly");
      await Deno.mkdir(bad);
      if (!(await makeReadOnly(bad))) return null;
      // root with chattr, or a non-root user with 0555: must really refuse
      const refused = await Deno.mkdir(join(bad, "probe")).then(() => false, () => true);
      if (!refused) {
        await makeWritable(bad);
        return null;
      }
      return {
        yaml: `      - type: file\n        path: ${bad}\n        sync-interval: 100ms\n`,
        client: () => new FileReplicaClient(bad),
        fix: () => makeWritable(bad),
        cleanup: () => makeWritable(bad),
      };
    },
  });
});

Deno.test("start-up with an S3 replica on a port that refuses connections: the healthy replica goes on; it catches up once reachable", async () => {
  const s3 = await startS3Server();
  try {
    const bucket = await s3.createBucket();
    const port = freePort();
    let fwd: { close(): Promise<void> } | null = null;
    await scenario({
      name: "refused port",
      why: /sync failed.*(refused|ECONNREFUSED|connect)/is,
      setup() {
        return Promise.resolve({
          yaml:
            `      - type: s3\n        bucket: ${bucket}\n        path: app\n        endpoint: http://127.0.0.1:${port}\n        force-path-style: true\n        sync-interval: 100ms\n`,
          client: () => s3TestClient(s3.endpoint, bucket),
          fix: () => {
            fwd = forward(port, s3.port);
            return Promise.resolve();
          },
          cleanup: async () => {
            await (fwd as { close(): Promise<void> } | null)?.close();
          },
        });
      },
    });
  } finally {
    await s3.stop();
  }
});

Deno.test("start-up with a missing S3 bucket: the healthy replica goes on; the replica catches up once the bucket exists", async () => {
  const s3 = await startS3Server();
  try {
    const bucket = `strata-missing-${crypto.randomUUID().slice(0, 8)}`;
    await scenario({
      name: "missing bucket",
      // the lease's error keeps the HTTP status
      why: /sync failed.*lease s3:.*failed \(HTTP 404 NoSuchBucket\)/,
      setup() {
        return Promise.resolve({
          yaml:
            `      - type: s3\n        bucket: ${bucket}\n        path: app\n        endpoint: ${s3.endpoint}\n        force-path-style: true\n        sync-interval: 100ms\n`,
          client: () => s3TestClient(s3.endpoint, bucket),
          fix: async () => {
            const r = await fetch(`${s3.endpoint}/${bucket}`, { method: "PUT" });
            await r.body?.cancel();
            assertMatch(String(r.status), /^2/);
          },
          cleanup: () => Promise.resolve(),
        });
      },
    });
  } finally {
    await s3.stop();
  }
});

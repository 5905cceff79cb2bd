/**
 * One writer per replica: the lease object (lock.json) on a file replica and
 * on S3 (fauxqs, which ignores conditional writes: the best-effort path),
 * and two `strata replicate` processes on one replica path.
 */

import { join } from "node:path";
import { hostname } from "node:os";
import { FileLeaseStore, FileReplicaClient, S3LeaseStore } from "../src/storage/mod.ts";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { Lease, LeaseHeldError } from "../src/replicate/mod.ts";
import { restoreTarget } from "../src/restore/mod.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { digestOf, Replicating, runWriter } from "./helpers/strata.ts";
import { checkL0Chain } from "./helpers/chain.ts";

Deno.test("file lease: refused while held, taken over when expired or when its process is gone, lost by the old holder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lease-" });
  try {
    let now = 1_000_000;
    const clock = () => now;
    const store = new FileLeaseStore(dir);
    const a = new Lease(store, { ttlMs: 30_000, owner: "host-a:11", clock });
    const b = new Lease(store, { ttlMs: 30_000, owner: "host-b:22", clock });
    await a.acquire();
    assert(a.held);
    const body = JSON.parse(await Deno.readTextFile(join(dir, "lock.json")));
    // Litestream v0.5's lock.json fields: generation, expires_at (RFC 3339), owner
    assertEquals(body.owner, "host-a:11");
    assertEquals(body.generation, 1);
    assertEquals(body.expires_at, new Date(now + 30_000).toISOString());
    const err = await assertRejects(() => b.acquire(), LeaseHeldError);
    assert(err.message.includes("held by host-a:11"), err.message);
    assertEquals(await b.ensure(), false);
    assert(b.problem?.includes("host-a:11"));

    now += 20_000;
    await a.renew(); // extends to now + 30 s
    now += 20_000;
    await assertRejects(() => b.acquire(), LeaseHeldError); // renewed: still held
    now += 31_000; // a stopped renewing (hung, partitioned): expired
    await b.acquire();
    assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "lock.json"))).generation, 2);
    await a.renew();
    assertEquals(a.held, false, "the old holder lost it");
    assert(a.problem?.includes("taken by another process"));
    await a.release(); // not ours any more: left alone
    assert(JSON.parse(await Deno.readTextFile(join(dir, "lock.json"))).owner === "host-b:22");
    await b.release();
    assertEquals(await store.read(), null);

    // a lease as Litestream v0.5 writes it (nanoseconds, a zone offset): held until then
    await Deno.writeTextFile(
      join(dir, "lock.json"),
      JSON.stringify({
        generation: 7,
        expires_at: new Date(now + 10_000).toISOString().replace("Z", "123456+00:00"),
        owner: "litestream-host:4321",
      }),
    );
    const e2 = await assertRejects(() => b.acquire(), LeaseHeldError);
    assert(e2.message.includes("held by litestream-host:4321"), e2.message);
    now += 11_000;
    await b.acquire();
    assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "lock.json"))).generation, 8);
    await b.release();

    // a holder on this host whose process is gone (kill -9): taken over at once
    const dead = new Lease(store, { owner: `${hostname()}:999999`, clock });
    await dead.acquire();
    const c = new Lease(store, { clock, isAlive: () => false });
    await c.acquire();
    assert(c.held);
    const d = new Lease(store, { clock, owner: `${hostname()}:1`, isAlive: () => true });
    await assertRejects(() => d.acquire(), LeaseHeldError);
    await c.release();

    // not a lease object: a clear error
    await Deno.writeTextFile(join(dir, "lock.json"), "garbage");
    await assertRejects(() => d.acquire(), Error, "not a lease object");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("s3 lease on a server without conditional writes (fauxqs): detected, best effort, refuses a second holder", async () => {
  const s3 = await startS3Server();
  try {
    const bucket = await s3.createBucket();
    const client = () =>
      new S3ReplicaClient({
        bucket,
        path: "app",
        endpoint: s3.endpoint,
        forcePathStyle: true,
        accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
        secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
      });
    const sa = new S3LeaseStore(client());
    const a = new Lease(sa, { owner: "host-a:1" });
    await a.acquire();
    assertEquals(sa.key, "app/lock.json");
    assertEquals(sa.conditional, false, "fauxqs ignores If-None-Match on PutObject");
    const b = new Lease(new S3LeaseStore(client()), { owner: "host-b:2" });
    await assertRejects(() => b.acquire(), LeaseHeldError, "held by host-a:1");
    await a.renew();
    assert(a.held);
    await a.release();
    await b.acquire();
    assert(b.held);
    await b.release();
  } finally {
    await s3.stop();
  }
});

/**
 * An in-memory S3 that honours If-None-Match / If-Match on PutObject as AWS
 * does (412 PreconditionFailed), behind the SDK's command objects: the
 * conditional path of the S3 lease store, which fauxqs cannot exercise.
 */
function conditionalS3(): S3ReplicaClient {
  const objects = new Map<string, { body: string; etag: string }>();
  let n = 0;
  const fail = (status: number, code: string) =>
    Object.assign(new Error(code), {
      name: code,
      Code: code,
      $metadata: { httpStatusCode: status },
    });
  const send = (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const i = cmd.input;
    const key = String(i.Key);
    const cur = objects.get(key);
    switch (cmd.constructor.name) {
      case "GetObjectCommand":
        if (!cur) throw fail(404, "NoSuchKey");
        return { ETag: cur.etag, Body: { transformToString: () => Promise.resolve(cur.body) } };
      case "PutObjectCommand": {
        if (i.IfNoneMatch === "*" && cur) throw fail(412, "PreconditionFailed");
        if (i.IfMatch !== undefined && (!cur || cur.etag !== i.IfMatch)) {
          throw fail(cur ? 412 : 404, cur ? "PreconditionFailed" : "NoSuchKey");
        }
        const etag = `"${++n}"`;
        objects.set(key, { body: new TextDecoder().decode(i.Body as Uint8Array), etag });
        return { ETag: etag };
      }
      case "DeleteObjectCommand":
        objects.delete(key);
        return {};
    }
    throw new Error(`unexpected ${cmd.constructor.name}`);
  };
  const fake = {
    bucket: "b",
    path: "app",
    client: () => Promise.resolve({ send: async (c: never) => await send(c) }),
  };
  return fake as unknown as S3ReplicaClient;
}

Deno.test("s3 lease on a server with conditional writes: creates once, replaces only its own version", async () => {
  let now = 5_000_000;
  const clock = () => now;
  const store = new S3LeaseStore(conditionalS3());
  const a = new Lease(store, { owner: "host-a:1", clock });
  await a.acquire();
  assertEquals(store.conditional, true, "a second create was refused: conditions honoured");
  const other = new S3LeaseStore(conditionalS3()); // (another bucket: independent)
  assertEquals(await other.read(), null);
  const b = new Lease(store, { owner: "host-b:2", clock });
  await assertRejects(() => b.acquire(), LeaseHeldError, "held by host-a:1");
  const stale = (await store.read())!.version;
  await a.renew(); // a new ETag
  assertEquals(await store.replace("{}", stale), null, "a replace with a stale ETag is refused");
  assert(a.held);
  now += 61_000; // expired
  await b.acquire();
  await a.renew();
  assertEquals(a.held, false, "the old holder lost it");
  await b.release();
  assertEquals(await store.read(), null);
});

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("two replicators on one replica path: the second waits, refused; after the first stops it takes over where it stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-two-" });
  const db = join(dir, "app.db");
  const replica = join(dir, "replica");
  const marks = join(dir, "marks.jsonl");
  const lock = join(replica, "lock.json");
  const owner = async () => {
    try {
      return JSON.parse(await Deno.readTextFile(lock)).owner as string;
    } catch {
      return null;
    }
  };
  let a: Replicating | null = null;
  let b: Replicating | null = null;
  try {
    await runWriter(db, "more", 1, marks);
    a = new Replicating([db, `file://${replica}`]);
    await waitFor("the first lease", async () => (await owner()) === `${hostname()}:${a!.pid}`);
    b = new Replicating([db, `file://${replica}`]);
    const writing = runWriter(db, "more", 2, marks);
    await new Promise((r) => setTimeout(r, 2000));
    assertEquals(await owner(), `${hostname()}:${a.pid}`, "the second did not take the lease");
    await writing;
    // a third one, waiting for the lease, stops at once on SIGINT without opening anything
    const c = new Replicating([db, `file://${replica}`]);
    await c.waitForLog(/is held by/);
    const outC = await c.stop();
    assertEquals(outC.code, 0, outC.stderr);
    assert(outC.stderr.includes("is held by"), outC.stderr);
    assert(!/INFO replicating db=/.test(outC.stderr), outC.stderr);
    const outA = await a.stop();
    a = null;
    assertEquals(outA.code, 0, outA.stderr);
    await waitFor("the takeover", async () => (await owner()) === `${hostname()}:${b!.pid}`);
    await runWriter(db, "more", 3, marks);
    const outB = await b.stop();
    b = null;
    assertEquals(outB.code, 0, outB.stderr);
    assert(outB.stderr.includes("is held by"), outB.stderr);
    assert(!outB.stderr.includes("diverged"), outB.stderr);
    assert(!outB.stderr.includes("capturing a full copy"), "continued where the first stopped");
    assertEquals(await owner(), null, "released on a clean stop");

    const client = new FileReplicaClient(replica);
    const chain = await checkL0Chain(client);
    assert(chain.files >= 2, `${chain.files} L0 files`);
    const out = join(dir, "restored.db");
    await restoreTarget(client, {}, out, { integrityCheck: "full" });
    assertEquals((await digestOf(out)).digest, (await digestOf(db)).digest);
  } finally {
    await a?.stop();
    await b?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

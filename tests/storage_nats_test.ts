/**
 * The nats client against a real NATS server with JetStream (Debian's
 * nats-server, password authentication), started by the tests on
 * 127.0.0.1: the storage conformance suite, Litestream's object names and
 * timestamp header, and an end-to-end replicate and restore.
 */

import { connect } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";
import { NatsReplicaClient } from "../src/storage/nats_client.ts";
import { parseReplicaUrl } from "../src/config/replica_url.ts";
import type { NatsReplicaConfig } from "../src/config/nats_config.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { conformanceTests, streamOf, testBytes } from "./helpers/conformance.ts";
import {
  NATS_PASSWORD,
  NATS_USER,
  type NatsServer,
  startNatsServer,
} from "./helpers/nats_server.ts";
import { replicateOnceAndRestore } from "./helpers/live.ts";

/** A server with the bucket created (Litestream's nats replicas need it made beforehand). */
async function serverWithBucket(bucket = "backups"): Promise<NatsServer> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url, user: NATS_USER, pass: NATS_PASSWORD });
  await new Objm(nc).create(bucket);
  await nc.close();
  return server;
}

function config(server: NatsServer, path = "app", password = NATS_PASSWORD): NatsReplicaConfig {
  return {
    ...parseReplicaUrl(`${server.url}/backups`) as NatsReplicaConfig,
    path,
    username: NATS_USER,
    password,
  };
}

conformanceTests("nats", async () => {
  const server = await serverWithBucket();
  const client = new NatsReplicaClient(config(server));
  return {
    client,
    async close() {
      await client.close();
      await server.stop();
    },
  };
});

Deno.test({
  name:
    "nats: Litestream's object names and timestamp header; a wrong password or a missing bucket fails naming it",
  sanitizeResources: false, // the SDK's sockets close after the test's end
  async fn() {
    const server = await serverWithBucket();
    const client = new NatsReplicaClient(config(server));
    try {
      await client.writeFile(
        3,
        0x10n,
        0x2an,
        streamOf(testBytes(5000)),
        new Date("2025-06-07T08:09:10.45Z"),
      );
      const nc = await connect({ servers: server.url, user: NATS_USER, pass: NATS_PASSWORD });
      const infos = await (await new Objm(nc).open("backups")).list();
      await nc.close();
      assertEquals(infos.map((i) => i.name), ["app/ltx/3/0000000000000010-000000000000002a.ltx"]);
      assertEquals(
        (infos[0].headers as unknown as Record<string, string[]>)["Litestream-Timestamp"],
        ["2025-06-07T08:09:10.45Z"],
      );
      const [f] = await client.listFiles(3);
      assertEquals(f.createdAt.toISOString(), "2025-06-07T08:09:10.450Z");

      const bad = new NatsReplicaClient(config(server, "app", "wrong"));
      let err = "";
      await bad.listFiles(0).catch((e) => (err = (e as Error).message));
      await bad.close();
      assertMatch(err, /cannot connect/);
      assert(!err.includes("wrong"), "no password in messages");
      const none = new NatsReplicaClient({ ...config(server), bucket: "missing" });
      await none.listFiles(0).catch((e) => (err = (e as Error).message));
      await none.close();
      assertMatch(err, /bucket missing cannot be opened \(it must be created beforehand\)/);
    } finally {
      await client.close();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "nats: after the library gives up reconnecting (max-reconnects), the next request connects again",
  sanitizeResources: false, // the SDK's sockets close after the test's end
  async fn() {
    const server = await serverWithBucket();
    const client = new NatsReplicaClient({
      ...config(server),
      maxReconnects: 1,
      reconnectWaitMs: 100,
    });
    try {
      await client.writeFile(0, 1n, 1n, streamOf(testBytes(3000)), new Date());
      await server.down();
      // the library's one reconnect attempt fails and it closes the connection for good
      await new Promise((r) => setTimeout(r, 1500));
      let err = "";
      await client.listFiles(0).catch((e) => (err = (e as Error).message));
      assert(err !== "", "no server: the request fails");
      await server.up();
      const files = await client.listFiles(0);
      assertEquals(files.map((f) => f.maxTXID), [1n], "connected again, the file is there");
    } finally {
      await client.close();
      await server.stop();
    }
  },
});

Deno.test("nats end to end: replicate -once to nats:// and restore it exactly; no password in the output", async () => {
  const server = await serverWithBucket();
  const dir = await Deno.makeTempDir({ prefix: "strata-nats-" });
  try {
    const url = `nats://${NATS_USER}:${NATS_PASSWORD}@127.0.0.1:${server.port}/backups`;
    await replicateOnceAndRestore(url, dir, NATS_PASSWORD);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

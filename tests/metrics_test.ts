/**
 * The replica-operation metrics of an instrumented client: counts, bytes and
 * error codes by operation, the client itself otherwise unchanged.
 */

import { assert, assertEquals, assertInstanceOf, assertRejects } from "./helpers/assert.ts";
import { readAll, streamOf, testBytes } from "./helpers/conformance.ts";
import { parseProm, sample } from "./helpers/ops.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { Metrics } from "../src/server/mod.ts";

Deno.test("an instrumented client counts LIST, GET, PUT and DELETE with bytes and error codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-metrics-unit-" });
  try {
    const metrics = new Metrics(() => []);
    const inner = new FileReplicaClient(dir);
    const c = metrics.instrument(inner);
    // the wrapper is still the client: type checks, properties and other members pass through
    assertInstanceOf(c, FileReplicaClient);
    assertEquals((c as FileReplicaClient).root, dir);
    assertEquals(c.location, dir);

    const data = testBytes(300_000);
    const now = new Date();
    await c.writeFile(0, 1n, 1n, streamOf(data), now);
    await c.writeFile(0, 2n, 2n, streamOf(data.subarray(0, 1000)), now);
    assertEquals((await c.listFiles(0)).length, 2);
    assertEquals(await readAll(await c.openFile(0, 1n, 1n)), data);
    await c.deleteFiles([{ level: 0, minTXID: 1n, maxTXID: 1n }, {
      level: 0,
      minTXID: 2n,
      maxTXID: 2n,
    }]);
    await c.deleteFiles([]);
    await assertRejects(() => c.openFile(0, 1n, 1n));

    const s = parseProm(await metrics.text());
    const op = (operation: string) => ({ replica_type: "file", operation });
    assertEquals(sample(s, "litestream_replica_operation_total", op("PUT")), 2);
    assertEquals(sample(s, "litestream_replica_operation_bytes", op("PUT")), 301_000);
    assertEquals(sample(s, "litestream_replica_operation_total", op("LIST")), 1);
    assertEquals(sample(s, "litestream_replica_operation_total", op("GET")), 2);
    assertEquals(sample(s, "litestream_replica_operation_bytes", op("GET")), 300_000);
    assertEquals(sample(s, "litestream_replica_operation_total", op("DELETE")), 2);
    assertEquals(sample(s, "litestream_replica_operation_duration_seconds_count", op("PUT")), 2);
    const errors = s.filter((x) => x.name === "litestream_replica_operation_errors_total");
    assertEquals(errors.length, 1);
    assertEquals(errors[0].labels.operation, "GET");
    assert(errors[0].labels.code.length > 0, "an error code");
    assertEquals(errors[0].value, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

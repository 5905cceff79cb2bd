/**
 * The s3 replica client against a local S3 server (fauxqs): the shared
 * conformance suite, Litestream's layout and metadata, multipart and failures.
 */

import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { conformanceTests } from "./helpers/conformance.ts";
import { type S3Server, startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";

let server: S3Server | null = null;
let users = 0;

/** A server shared by the tests running at once; the last one out stops it. */
async function acquire(): Promise<S3Server> {
  users++;
  server ??= await startS3Server();
  return server;
}

async function release(): Promise<void> {
  if (--users === 0 && server) {
    const s = server;
    server = null;
    await s.stop();
  }
}

function clientFor(s: S3Server, bucket: string, path = "db"): S3ReplicaClient {
  return new S3ReplicaClient({
    bucket,
    path,
    endpoint: s.endpoint,
    forcePathStyle: true,
    accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
    secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
    retryBaseMs: 20,
  });
}

conformanceTests("s3", async () => {
  const s = await acquire();
  const client = clientFor(s, await s.createBucket());
  return {
    client,
    async close() {
      await client.close();
      await release();
    },
  };
});

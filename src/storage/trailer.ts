/** Reading a replica file's trailer alone (one ranged read of 16 bytes). */

import { decodeTrailer, TRAILER_SIZE } from "../ltx/mod.ts";
import { type ReplicaClient, type ReplicaFile, replicaFileLabel } from "./client.ts";

/** The post-apply checksum in a replica file's trailer. */
export async function readReplicaPost(client: ReplicaClient, f: ReplicaFile): Promise<bigint> {
  const stream = await client.openFile(f.level, f.minTXID, f.maxTXID, {
    offset: f.size - TRAILER_SIZE,
    length: TRAILER_SIZE,
  });
  const buf = new Uint8Array(TRAILER_SIZE);
  let got = 0;
  for await (const chunk of stream) {
    const n = Math.min(chunk.length, TRAILER_SIZE - got);
    buf.set(chunk.subarray(0, n), got);
    got += n;
  }
  if (got < TRAILER_SIZE) {
    throw new Error(`could not read the trailer of ${replicaFileLabel(client.location, f)}`);
  }
  return decodeTrailer(buf).postApplyChecksum;
}

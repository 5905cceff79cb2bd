/** Reading a replica file's ends: a byte range, its trailer (one ranged read of 16 bytes). */

import { decodeHeader, decodeTrailer, HEADER_SIZE, TRAILER_SIZE } from "../ltx/mod.ts";
import { type ReplicaClient, type ReplicaFile, replicaFileLabel } from "./client.ts";

/**
 * The post-apply checksum of a replica file: its trailer's; for a file
 * without one (0: Litestream's form), the one its header keeps (a second
 * small read), else 0.
 */
export async function readReplicaPost(client: ReplicaClient, f: ReplicaFile): Promise<bigint> {
  const post = decodeTrailer(
    await readBytes(client, f, f.size - TRAILER_SIZE, TRAILER_SIZE, "trailer"),
  ).postApplyChecksum;
  if (post !== 0n) return post;
  const label = replicaFileLabel(client.location, f);
  const h = decodeHeader(await readBytes(client, f, 0, HEADER_SIZE, "header"), label);
  return h.kept?.post ?? 0n;
}

async function readBytes(
  client: ReplicaClient,
  f: ReplicaFile,
  offset: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  const buf = await readReplicaRange(client, f, offset, length);
  if (buf.length < length) {
    throw new Error(`could not read the ${what} of ${replicaFileLabel(client.location, f)}`);
  }
  return buf;
}

/** Up to `length` bytes of `f` at `offset` (fewer when the file ends first: callers check). */
export async function readReplicaRange(
  client: ReplicaClient,
  f: ReplicaFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const stream = await client.openFile(f.level, f.minTXID, f.maxTXID, { offset, length });
  const buf = new Uint8Array(length);
  let got = 0;
  for await (const chunk of stream) {
    const n = Math.min(chunk.length, length - got);
    buf.set(chunk.subarray(0, n), got);
    got += n;
  }
  return buf.subarray(0, got);
}

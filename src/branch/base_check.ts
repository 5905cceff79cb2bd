/**
 * A branch's base, checked against its manifest before any of it is read:
 * the source must hold every file the manifest names, with the size it had
 * at `clone`, and the last one must end at the pinned TXID with the pinned
 * database checksum (its header and trailer, two small ranged reads). A
 * source recreated at the same URL, or a manifest pointed at another
 * replica, is refused by name instead of restoring other data. (A restore
 * then checks every page it applies against each file's post-apply
 * checksum, so the base state it builds is the pinned one.)
 */

import {
  decodeHeader,
  decodeTrailer,
  formatChecksum,
  formatTXID,
  hasChecksums,
  HEADER_SIZE,
  TRAILER_SIZE,
} from "../ltx/mod.ts";
import { readReplicaRange, type ReplicaClient, type ReplicaFile } from "../storage/mod.ts";
import { BranchError, type BranchManifest } from "./manifest.ts";
import { fileKey } from "./registry.ts";

export class BranchBaseMismatchError extends BranchError {
  constructor(branch: string, m: BranchManifest, source: string, why: string) {
    super(
      `branch ${branch}: its source ${source} does not hold the base its manifest pins (TXID ${
        formatTXID(m.base.txid)
      }, checksum ${
        formatChecksum(m.base.checksum)
      }): ${why}; the source was recreated, or the manifest names another replica; refusing to restore other data`,
    );
    this.name = "BranchBaseMismatchError";
  }
}

function label(f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">): string {
  return `L${f.level} ${formatTXID(f.minTXID)}-${formatTXID(f.maxTXID)}`;
}

/** `length` bytes of `f` at `offset`. */
export async function readRange(
  client: ReplicaClient,
  f: ReplicaFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = await readReplicaRange(client, f, offset, length);
  if (out.length !== length) {
    throw new BranchError(`${client.location} ${label(f)}: short read at ${offset}`);
  }
  return out;
}

/** Throws `BranchBaseMismatchError` unless `source` holds the base `m` pins (see above). */
export async function verifyBranchBase(
  branch: string,
  m: BranchManifest,
  source: ReplicaClient,
): Promise<void> {
  const refuse = (why: string) => new BranchBaseMismatchError(branch, m, source.location, why);
  const listed = new Map<string, ReplicaFile>();
  for (const level of new Set(m.files.map((f) => f.level))) {
    const from = m.files.filter((f) => f.level === level)
      .reduce((min, f) => (f.minTXID < min ? f.minTXID : min), m.base.txid);
    for (const f of await source.listFiles(level, from)) listed.set(fileKey(f), f);
  }
  for (const f of m.files) {
    const have = listed.get(fileKey(f));
    if (!have) throw refuse(`it has no file ${label(f)}`);
    if (have.size !== f.size) {
      throw refuse(`its file ${label(f)} is ${have.size} bytes, the manifest's ${f.size}`);
    }
  }
  const last = m.files[m.files.length - 1];
  const h = decodeHeader(
    await readRange(source, last, 0, HEADER_SIZE),
    `${source.location} ${label(last)}`,
  );
  if (h.minTXID !== last.minTXID || h.maxTXID !== last.maxTXID) {
    throw refuse(
      `its file ${label(last)} holds TXIDs ${formatTXID(h.minTXID)}-${formatTXID(h.maxTXID)}`,
    );
  }
  if (!hasChecksums(h)) throw refuse(`its file ${label(last)} carries no checksums`);
  const t = decodeTrailer(await readRange(source, last, last.size - TRAILER_SIZE, TRAILER_SIZE));
  const post = h.kept?.post ?? t.postApplyChecksum; // a file in Litestream's form keeps it in the header
  if (post !== m.base.checksum) {
    throw refuse(`its file ${label(last)} ends at checksum ${formatChecksum(post)}`);
  }
}

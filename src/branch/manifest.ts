/**
 * A branch's manifest: a small, self-describing JSON document saying which
 * files of which source replica make up the branch's base state. Written
 * twice at `clone`: into the branch (so a restore of the branch needs only
 * the manifest and the source's files) and into the source's branch
 * registry (so the source's retention knows which files a live branch
 * needs, and `strata branches` can list them).
 *
 * Both copies travel through the ordinary replica client interface under
 * levels that LTX readers never visit (restores and Litestream read levels
 * 0..9): the branch's own manifest at level 10, the source's registry at
 * level 11, named `<base TXID>-<branch id>.ltx` so that listing a level
 * already says which branches exist (the id has its top bit set, so the name
 * passes as an LTX name). The content is JSON, not LTX.
 */

import { ageEncryptedReason, formatChecksum, formatTXID, parseTXID } from "../ltx/mod.ts";
import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";
import { parseRFC3339 } from "../rfc3339.ts";

/** The branch's own manifest, in the branch replica. */
export const BRANCH_MANIFEST_LEVEL = 10;
/** Registrations of the branches made from a replica, in that (source) replica. */
export const BRANCH_REGISTRY_LEVEL = 11;

export const MANIFEST_FORMAT = "strata-branch";
export const MANIFEST_VERSION = 1;

/** Largest manifest strata reads (a manifest lists a restore plan: tens of files). */
const MAX_MANIFEST_BYTES = 4 << 20;

export class BranchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BranchError";
  }
}

export interface BranchManifest {
  /** Random 64-bit identifier with the top bit set; the second half of the manifest's name. */
  id: bigint;
  /** The source replica's URL, without secrets. */
  source: string;
  /** The branch replica's URL, without secrets. */
  dest: string;
  /** The source state the branch starts from. */
  base: {
    txid: bigint;
    /** The database checksum after `txid` (the last file's post-apply checksum). */
    checksum: bigint;
    pageSize: number;
    /** Creation time of the last source file (the moment the base state existed). */
    time: Date;
  };
  /** The source files that restore the base state, in apply order. */
  files: ReplicaFile[];
  createdAt: Date;
}

/** A URL or path as it may be stored: absolute, without passwords or tokens in it. */
export function publicReplicaUrl(url: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url);
  if (!m) return new URL(`file://${url.startsWith("/") ? url : `${Deno.cwd()}/${url}`}`).href;
  const u = new URL(url);
  u.password = "";
  for (const k of [...u.searchParams.keys()]) {
    if (/secret|password|token|sig|key/i.test(k)) u.searchParams.delete(k);
  }
  return u.href;
}

export function encodeManifest(m: BranchManifest): Uint8Array {
  const doc = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    id: formatTXID(m.id),
    source: m.source,
    dest: m.dest,
    base: {
      txid: formatTXID(m.base.txid),
      checksum: formatChecksum(m.base.checksum),
      pageSize: m.base.pageSize,
      time: m.base.time.toISOString(),
    },
    files: m.files.map((f) => ({
      level: f.level,
      minTXID: formatTXID(f.minTXID),
      maxTXID: formatTXID(f.maxTXID),
      size: f.size,
      createdAt: f.createdAt.toISOString(),
    })),
    createdAt: m.createdAt.toISOString(),
  };
  return new TextEncoder().encode(JSON.stringify(doc, null, 2) + "\n");
}

/** Parses and checks a manifest; `where` names it in errors. */
export function decodeManifest(bytes: Uint8Array, where: string): BranchManifest {
  const bad = (why: string) => new BranchError(`branch manifest ${where}: ${why}`);
  const encrypted = ageEncryptedReason(bytes);
  if (encrypted) throw bad(encrypted);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null) throw bad("not a JSON object");
  if (doc.format !== MANIFEST_FORMAT) throw bad(`format is not "${MANIFEST_FORMAT}"`);
  if (doc.version !== MANIFEST_VERSION) {
    throw bad(`version ${JSON.stringify(doc.version)} is not supported (this strata reads 1)`);
  }
  const hex = (v: unknown, what: string): bigint => {
    const n = typeof v === "string" ? parseTXID(v) : null;
    if (n === null) throw bad(`${what} is not 16 hex digits`);
    return n;
  };
  const str = (v: unknown, what: string): string => {
    if (typeof v !== "string" || v === "") throw bad(`${what} missing`);
    return v;
  };
  const time = (v: unknown, what: string): Date => {
    const d = parseRFC3339(str(v, what));
    if (!d) throw bad(`${what} is not an RFC 3339 time`);
    return d;
  };
  const base = doc.base as Record<string, unknown> | undefined;
  if (!base || typeof base !== "object") throw bad("base missing");
  const pageSize = base.pageSize;
  if (typeof pageSize !== "number" || !Number.isInteger(pageSize) || pageSize < 512) {
    throw bad("base.pageSize invalid");
  }
  if (!Array.isArray(doc.files) || doc.files.length === 0) throw bad("files missing");
  const files: ReplicaFile[] = doc.files.map((f: Record<string, unknown>, i: number) => {
    const level = f?.level;
    if (typeof level !== "number" || !Number.isInteger(level) || level < 0 || level > 9) {
      throw bad(`files[${i}].level invalid`);
    }
    const size = f.size;
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw bad(`files[${i}].size invalid`);
    }
    return {
      level,
      minTXID: hex(f.minTXID, `files[${i}].minTXID`),
      maxTXID: hex(f.maxTXID, `files[${i}].maxTXID`),
      size,
      createdAt: time(f.createdAt, `files[${i}].createdAt`),
    };
  });
  const m: BranchManifest = {
    id: hex(doc.id, "id"),
    source: str(doc.source, "source"),
    dest: str(doc.dest, "dest"),
    base: {
      txid: hex(base.txid, "base.txid"),
      checksum: hex(base.checksum, "base.checksum"),
      pageSize,
      time: time(base.time, "base.time"),
    },
    files,
    createdAt: time(doc.createdAt, "createdAt"),
  };
  if (m.id < 0x8000000000000000n) throw bad("id must have its top bit set");
  // the files must chain from a full copy to the base TXID
  if (files[0].minTXID !== 1n) throw bad("files do not start with a snapshot");
  for (let i = 1; i < files.length; i++) {
    if (files[i].minTXID !== files[i - 1].maxTXID + 1n) {
      throw bad(`files[${i}] does not continue files[${i - 1}]`);
    }
  }
  if (files[files.length - 1].maxTXID !== m.base.txid) throw bad("files do not end at base.txid");
  return m;
}

async function readAll(stream: ReadableStream<Uint8Array>, where: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of stream) {
    n += c.length;
    if (n > MAX_MANIFEST_BYTES) throw new BranchError(`branch manifest ${where}: too large`);
    chunks.push(c);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Where a manifest is stored: minTXID = the base TXID, maxTXID = the branch id. */
export function manifestFile(
  level: number,
  m: Pick<BranchManifest, "id" | "base">,
): Pick<ReplicaFile, "level" | "minTXID" | "maxTXID"> {
  return { level, minTXID: m.base.txid, maxTXID: m.id };
}

function nameOf(client: ReplicaClient, f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">) {
  return `${client.location} level ${f.level} ${formatTXID(f.minTXID)}-${formatTXID(f.maxTXID)}`;
}

/** Writes `m` at `level` of `client` (the branch's manifest or the source's registry). */
export async function writeManifest(
  client: ReplicaClient,
  level: number,
  m: BranchManifest,
): Promise<number> {
  const bytes = encodeManifest(m);
  await client.writeFile(level, m.base.txid, m.id, ReadableStream.from([bytes]), m.createdAt);
  return bytes.length;
}

export async function readManifestFile(
  client: ReplicaClient,
  f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">,
): Promise<BranchManifest> {
  const where = nameOf(client, f);
  const m = decodeManifest(
    await readAll(await client.openFile(f.level, f.minTXID, f.maxTXID), where),
    where,
  );
  if (m.base.txid !== f.minTXID || m.id !== f.maxTXID) {
    throw new BranchError(`branch manifest ${where}: its id or base TXID differs from its name`);
  }
  return m;
}

/** The branch manifest of `client`'s replica, or null when it is not a branch. */
export async function readBranchManifest(client: ReplicaClient): Promise<BranchManifest | null> {
  const found = await client.listFiles(BRANCH_MANIFEST_LEVEL);
  if (found.length === 0) return null;
  if (found.length > 1) {
    throw new BranchError(
      `replica ${client.location} holds ${found.length} branch manifests at level ${BRANCH_MANIFEST_LEVEL}; expected one`,
    );
  }
  return await readManifestFile(client, found[0]);
}

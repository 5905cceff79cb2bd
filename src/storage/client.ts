/**
 * The storage client interface: dumb and stateless, as Litestream's
 * ReplicaClient. Levels, timestamps, retention and planning live above it.
 */

import { formatLtxFileName } from "../ltx/mod.ts";

export interface ReplicaFile {
  level: number;
  minTXID: bigint;
  maxTXID: bigint;
  size: number;
  /** Creation time of the file's content (the LTX header timestamp when known). */
  createdAt: Date;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ReplicaClient {
  /** "file", "s3", … */
  readonly type: string;
  /** Where the replica is, for messages (never includes secrets). */
  readonly location: string;
  /** Files of one level in TXID order, starting at the first with minTXID >= `seek`. */
  listFiles(level: number, seek?: bigint): Promise<ReplicaFile[]>;
  /** Opens a file (or a byte range of it) for streaming reads. */
  openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>>;
  /** Writes a file from a stream; it becomes visible only when complete. */
  writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile>;
  deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void>;
  /**
   * Drops a local cached copy of `f` that the running restore read (it failed
   * a check) and says whether there was one; clients without a cache have none.
   */
  evictCached?(f: ReplicaFile): Promise<boolean>;
  /**
   * Clients that create files with modes (file, sftp): write them no more
   * readable than a database file of mode `dbMode` (0600/0700 for 0600).
   */
  restrictModes?(dbMode: number): void;
}

/** A file the replica does not have. */
export class ReplicaFileNotFoundError extends Error {
  constructor(location: string, key: string) {
    super(`replica ${location}: file ${key} not found`);
    this.name = "ReplicaFileNotFoundError";
  }
}

export const SNAPSHOT_LEVEL = 9;

export function compareFiles(a: ReplicaFile, b: ReplicaFile): number {
  return a.minTXID < b.minTXID
    ? -1
    : a.minTXID > b.minTXID
    ? 1
    : a.maxTXID < b.maxTXID
    ? -1
    : a.maxTXID > b.maxTXID
    ? 1
    : 0;
}

/** A replica as logs, status, metrics and the web page name it: "TYPE:LOCATION". */
export function replicaName(c: { type: string; location: string }): string {
  return `${c.type}:${c.location}`;
}

/** How messages name a replica file, whatever the client's layout: "LOCATION L0/<min>-<max>.ltx". */
export function replicaFileLabel(
  location: string,
  f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">,
): string {
  return `${location} L${f.level}/${formatLtxFileName(f.minTXID, f.maxTXID)}`;
}

/**
 * Waits for an upload of a produced stream (a merge's, a re-encoding's),
 * then for its producer. The write's error wins (it names the replica file
 * and the reason, ENOSPC say; a failed producer reaches the write through
 * the stream): a write that failed before reading the stream leaves the
 * producer waiting, so it is not awaited.
 */
export async function uploadOfMerge<T>(write: Promise<T>, merged: Promise<unknown>): Promise<T> {
  merged.catch(() => {}); // reported through the write, or awaited below
  const value = await write;
  await merged;
  return value;
}

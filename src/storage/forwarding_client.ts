/**
 * A replica client that passes every call to another one: the base of the
 * wrappers that change one part of a client's behaviour (a branch's whole
 * view, the restore cache, counters in tests and benchmarks).
 */

import type { ByteRange, ReplicaClient, ReplicaFile } from "./client.ts";

export class ForwardingReplicaClient implements ReplicaClient {
  readonly inner: ReplicaClient;

  constructor(inner: ReplicaClient) {
    this.inner = inner;
  }

  get type(): string {
    return this.inner.type;
  }

  get location(): string {
    return this.inner.location;
  }

  listFiles(level: number, seek?: bigint): Promise<ReplicaFile[]> {
    return this.inner.listFiles(level, seek);
  }

  openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    return this.inner.openFile(level, minTXID, maxTXID, range);
  }

  writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    return this.inner.writeFile(level, minTXID, maxTXID, data, createdAt);
  }

  deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    return this.inner.deleteFiles(files);
  }

  async evictCached(f: ReplicaFile): Promise<boolean> {
    return await this.inner.evictCached?.(f) ?? false;
  }

  restrictModes(dbMode: number): void {
    this.inner.restrictModes?.(dbMode);
  }

  async close(): Promise<void> {
    await (this.inner as { close?: () => Promise<void> }).close?.();
  }

  /** The client at the bottom of a stack of wrappers. */
  static innermost(client: ReplicaClient): ReplicaClient {
    let c = client;
    while (c instanceof ForwardingReplicaClient) c = c.inner;
    return c;
  }
}

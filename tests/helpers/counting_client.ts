/** A replica client wrapper counting the bytes and files read through it. */

import { ForwardingReplicaClient, type ReplicaClient } from "../../src/storage/mod.ts";
import { formatLtxFileName } from "../../src/ltx/mod.ts";

/** Typed as a network replica (not `file`), so the restore cache applies to it. */
export class CountingClient extends ForwardingReplicaClient {
  override get type(): string {
    return "counting";
  }
  bytes = 0;
  opened: string[] = [];

  constructor(inner: ReplicaClient) {
    super(inner);
  }

  override async openFile(
    level: number,
    min: bigint,
    max: bigint,
    range?: { offset: number; length: number },
  ): Promise<ReadableStream<Uint8Array>> {
    this.opened.push(`${level}/${formatLtxFileName(min, max)}`);
    return (await this.inner.openFile(level, min, max, range)).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (c, ctrl) => {
          this.bytes += c.length;
          ctrl.enqueue(c);
        },
      }),
    );
  }
}

/**
 * Downloads the next planned files of a restore while the current one is
 * applied: a network replica's request latency and transfer overlap the
 * decoding instead of adding to it. Files are read ahead, in plan order,
 * whole into memory while they fit a byte budget (and at most a few at a
 * time); a file larger than what is free is read as usual when its turn
 * comes. Reads of anything else go straight to the replica.
 */

import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";
import { ForwardingReplicaClient } from "../storage/forwarding_client.ts";

/** Files read ahead at once, at most (`restore -parallelism`). */
let ahead = 4;

/** Sets how many planned files are downloaded ahead at once (1 to 64). */
export function setFilesAhead(n: number): void {
  ahead = Math.max(1, Math.min(64, Math.floor(n)));
}

interface Ahead {
  file: ReplicaFile;
  /**
   * The whole file's chunks, or the failure to deliver when its turn comes;
   * null when it turned out larger than listed (then it is read as usual).
   */
  chunks: Promise<Uint8Array[] | null>;
}

const key = (level: number, min: bigint, max: bigint) => `${level}/${min}/${max}`;

export class PrefetchingReplicaClient extends ForwardingReplicaClient {
  readonly #queue: ReplicaFile[];
  readonly #ahead = new Map<string, Ahead>();
  readonly #budget: number;
  #used = 0;

  /** Reads `plan` ahead within `budgetBytes`. */
  constructor(inner: ReplicaClient, plan: ReplicaFile[], budgetBytes: number) {
    super(inner);
    this.#queue = [...plan];
    this.#budget = budgetBytes;
    this.#fill();
  }

  /** Starts reading files ahead while they fit. */
  #fill(): void {
    while (this.#queue.length > 0 && this.#ahead.size < ahead) {
      const f = this.#queue[0];
      if (this.#used + f.size > this.#budget) {
        // the file does not fit now: read when its turn comes, unless it will never fit
        if (this.#ahead.size > 0 || f.size <= this.#budget) return;
        this.#queue.shift();
        continue;
      }
      this.#queue.shift();
      this.#used += f.size;
      const chunks = this.#download(f);
      chunks.catch(() => {}); // delivered when the file's turn comes
      this.#ahead.set(key(f.level, f.minTXID, f.maxTXID), { file: f, chunks });
    }
  }

  async #download(f: ReplicaFile): Promise<Uint8Array[] | null> {
    const out: Uint8Array[] = [];
    let n = 0;
    const stream = await this.inner.openFile(f.level, f.minTXID, f.maxTXID);
    for await (const c of stream) {
      n += c.length;
      // never more memory than the listing promised: a larger file is read in its turn instead
      if (n > f.size) {
        await stream.cancel().catch(() => {});
        return null;
      }
      out.push(c);
    }
    return out;
  }

  override async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: Parameters<ReplicaClient["openFile"]>[3],
  ): Promise<ReadableStream<Uint8Array>> {
    const k = key(level, minTXID, maxTXID);
    const ahead = range ? undefined : this.#ahead.get(k);
    if (!ahead) {
      // its turn came before it was read ahead (it did not fit): later files may go ahead now
      const i = this.#queue.findIndex((f) => key(f.level, f.minTXID, f.maxTXID) === k);
      if (!range && i >= 0) {
        this.#queue.splice(i, 1);
        this.#fill();
      }
      return await super.openFile(level, minTXID, maxTXID, range);
    }
    this.#ahead.delete(k);
    let got: Uint8Array[] | null;
    try {
      got = await ahead.chunks;
    } finally {
      this.#used -= ahead.file.size;
      this.#fill();
    }
    if (got === null) return await super.openFile(level, minTXID, maxTXID);
    let chunks = got;
    let i = 0;
    return new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (i < chunks.length) ctrl.enqueue(chunks[i++]);
        else ctrl.close();
      },
      cancel() {
        chunks = [];
      },
    });
  }
}

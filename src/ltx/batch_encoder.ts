/**
 * Writes many pages into an LtxEncoder with their compression and CRC-64 on
 * a PagePool's threads: pages are copied into batches, a few batches are in
 * flight while the caller reads on, and their blocks go into the encoder in
 * page order (which checks them as writePage does). Used for snapshots and
 * full copies, where the pages are many.
 */

import type { LtxEncoder } from "./encoder.ts";
import type { EncodedBatch, PagePool } from "./page_pool.ts";
import { lz4CompressBound } from "./lz4.ts";

/** Bytes of pages per batch. */
const BATCH_BYTES = 1 << 20;

interface Slot {
  pgnos: Uint32Array;
  src: Uint8Array;
  out: Uint8Array;
}

export class BatchedPageWriter {
  readonly #enc: LtxEncoder;
  readonly #pool: PagePool;
  readonly #ps: number;
  readonly #bound: number;
  readonly #per: number;
  readonly #free: Slot[] = [];
  readonly #inflight: { slot: Slot; n: number; done: Promise<EncodedBatch> }[] = [];
  #slot: Slot | null = null;
  #n = 0;

  constructor(enc: LtxEncoder, pool: PagePool) {
    this.#enc = enc;
    this.#pool = pool;
    this.#ps = enc.header.pageSize;
    this.#bound = lz4CompressBound(this.#ps);
    this.#per = Math.max(1, Math.floor(BATCH_BYTES / this.#ps));
  }

  /** Adds page `pgno` (copied: `page` may be reused as soon as this returns). */
  async writePage(pgno: number, page: Uint8Array): Promise<void> {
    if (page.length !== this.#ps) {
      // the encoder names the problem
      await this.flush();
      return await this.#enc.writePage(pgno, page);
    }
    const slot = this.#slot ??= this.#free.pop() ?? {
      pgnos: new Uint32Array(this.#per),
      src: new Uint8Array(this.#per * this.#ps),
      out: new Uint8Array(this.#per * this.#bound),
    };
    slot.pgnos[this.#n] = pgno;
    slot.src.set(page, this.#n * this.#ps);
    if (++this.#n === this.#per) await this.#send();
  }

  /** Waits until every page added is in the encoder. */
  async flush(): Promise<void> {
    if (this.#n > 0) await this.#send();
    while (this.#inflight.length > 0) await this.#take();
  }

  async #send(): Promise<void> {
    const slot = this.#slot!;
    const n = this.#n;
    this.#slot = null;
    this.#n = 0;
    const done = this.#pool.encode({ pageSize: this.#ps, count: n, src: slot.src, out: slot.out });
    done.catch(() => {}); // awaited in order by #take; a failure there is the one reported
    this.#inflight.push({ slot, n, done });
    if (this.#inflight.length >= this.#pool.depth) await this.#take();
  }

  async #take(): Promise<void> {
    const job = this.#inflight.shift()!;
    const r = await job.done;
    const out = new Uint8Array(r.out.buffer);
    const crc = { hi: 0, lo: 0 };
    for (let k = 0; k < job.n; k++) {
      crc.hi = r.crcHi[k];
      crc.lo = r.crcLo[k];
      const at = k * this.#bound;
      await this.#enc.writeCompressed(job.slot.pgnos[k], out.subarray(at, at + r.lens[k]), crc);
    }
    this.#free.push({ pgnos: job.slot.pgnos, src: new Uint8Array(r.src.buffer), out });
  }
}

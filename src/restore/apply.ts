/**
 * Applying LTX files, in order, to a database file open at `fd`: pages are
 * written in place, pages above the new commit cut off, and the rolling
 * database checksum kept from cached per-page checksums so that each file's
 * pre-apply and post-apply checksums are checked against what was written.
 */

import * as fs from "node:fs";
import {
  type Crc64,
  crc64Update,
  DatabaseChecksum,
  formatChecksum,
  formatTXID,
  growPageChecksums,
  hasChecksums,
  isSnapshot,
  lockPageNumber,
  LtxDecoder,
  LtxFormatError,
  pageChecksumFromCrc,
  type RawPageBatch,
} from "../ltx/mod.ts";
import type { DecodedBatch, PagePool } from "../ltx/page_pool.ts";
import { type ReplicaClient, type ReplicaFile, replicaFileLabel } from "../storage/mod.ts";
import type { ProgressCounter } from "../progress.ts";

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestoreError";
  }
}

/** A replica file that failed a check while it was applied: names the file and the reason. */
export class ReplicaFileCheckError extends RestoreError {
  readonly file: ReplicaFile;
  readonly label: string;
  readonly reason: string;
  /** True when the file itself is sound but does not continue the files applied before it. */
  readonly chain: boolean;
  constructor(file: ReplicaFile, label: string, reason: string, chain = false) {
    super(`replica file ${label} refused: ${reason}`);
    this.name = "ReplicaFileCheckError";
    this.file = file;
    this.label = label;
    this.reason = reason;
    this.chain = chain;
  }
}

/** How many passed TXIDs' checksums an applier remembers. */
const HISTORY = 256;

/** Bytes of consecutive pages gathered into one write. */
const WRITE_BATCH = 1 << 20;

/**
 * Pages of ascending, mostly consecutive numbers written to `fd` in runs:
 * each page is decompressed straight into the next free slot of a reused
 * buffer, and a run is written with one call when it breaks or fills up.
 */
class PageWriteBatch {
  readonly #fd: number;
  readonly #ps: number;
  readonly #buf: Uint8Array;
  #first = 0;
  #count = 0;

  constructor(fd: number, pageSize: number) {
    this.#fd = fd;
    this.#ps = pageSize;
    this.#buf = new Uint8Array(Math.max(1, Math.floor(WRITE_BATCH / pageSize)) * pageSize);
  }

  /** Where the next page goes. */
  slot(): Uint8Array {
    return this.#buf.subarray(this.#count * this.#ps, (this.#count + 1) * this.#ps);
  }

  /** Keeps the page just decoded into slot() as page `pgno`. */
  add(pgno: number): void {
    const ps = this.#ps;
    if (this.#count > 0 && pgno !== this.#first + this.#count) {
      const at = this.#count * ps;
      this.#write(this.#count);
      this.#buf.copyWithin(0, at, at + ps);
    }
    if (this.#count === 0) this.#first = pgno;
    this.#count++;
    if ((this.#count + 1) * ps > this.#buf.length) this.flush();
  }

  flush(): void {
    this.#write(this.#count);
  }

  #write(n: number): void {
    writeAll(this.#fd, this.#buf, 0, n * this.#ps, (this.#first - 1) * this.#ps);
    this.#count = 0;
  }
}

/** Writes `buf[start, start + len)` at file offset `at`, all of it. */
function writeAll(fd: number, buf: Uint8Array, start: number, len: number, at: number): void {
  for (let done = 0; done < len;) {
    done += fs.writeSync(fd, buf, start + done, len - done, at + done);
  }
}

export class PageApplier {
  readonly fd: number;
  pageSize = 0;
  /** Database size in pages. */
  commit = 0;
  /** The TXID the file is at (0 before the first file). */
  txid = 0n;
  /**
   * Whether the state written is verified by the replica: the last file
   * applied carried a post-apply checksum and it matched. False after a file
   * without checksums (Litestream v0.5 writes them so); `sum` is still the
   * database's checksum computed from its pages, and a later file that has
   * checksums is checked against it (and verifies the state again).
   */
  checksums = true;
  readonly sum = new DatabaseChecksum();
  #pcHi = new Uint32Array(1024);
  #pcLo = new Uint32Array(1024);
  /** Decodes pages on other threads when set (large restores); page by page here otherwise. */
  pool: PagePool | null = null;
  /** Checksums at TXIDs passed (oldest first). */
  #history = new Map<bigint, bigint>();

  constructor(fd: number) {
    this.fd = fd;
  }

  /**
   * The state of a database file already at `txid` (read page by page, so its
   * checksum can be compared with what it should be).
   */
  static fromFile(fd: number, pageSize: number, txid: bigint): PageApplier {
    const a = new PageApplier(fd);
    a.pageSize = pageSize;
    a.txid = txid;
    const size = fs.fstatSync(fd).size;
    if (size % pageSize !== 0) {
      throw new RestoreError(
        `database of ${size} bytes is not a whole number of ${pageSize}-byte pages`,
      );
    }
    a.commit = size / pageSize;
    a.#grow(a.commit + 1);
    const lock = lockPageNumber(pageSize);
    const page = new Uint8Array(pageSize);
    const pc = { hi: 0, lo: 0 };
    for (let pgno = 1; pgno <= a.commit; pgno++) {
      if (pgno === lock) continue;
      fs.readSync(fd, page, 0, pageSize, (pgno - 1) * pageSize);
      pageChecksumFromCrc(pgno, crc64Update({ hi: 0, lo: 0 }, page), pageSize, pc);
      a.sum.xor(pc);
      a.#pcHi[pgno] = pc.hi;
      a.#pcLo[pgno] = pc.lo;
    }
    return a;
  }

  /** The same state, writing to another descriptor (a copy of the same database). */
  fork(fd: number): PageApplier {
    const a = new PageApplier(fd);
    a.pageSize = this.pageSize;
    a.commit = this.commit;
    a.txid = this.txid;
    a.checksums = this.checksums;
    a.sum.set(this.sum.value);
    a.#pcHi = this.#pcHi.slice();
    a.#pcLo = this.#pcLo.slice();
    a.#history = new Map(this.#history);
    return a;
  }

  /**
   * Applies one file. Its header must cover exactly the TXIDs its name says.
   * Its pre-apply checksum is checked against the restored database when it
   * starts right after the current TXID, or against the checksum recorded
   * when this applier passed the TXID before it (a compacted file covering
   * the current TXID, in follow mode); its post-apply checksum always. A file
   * that grows the database must carry every page it grows it by. Any failed
   * check throws `ReplicaFileCheckError` naming the file.
   */
  async apply(
    client: ReplicaClient,
    f: ReplicaFile,
    progress?: ProgressCounter | null,
  ): Promise<void> {
    const name = replicaFileLabel(client.location, f);
    const stream = await client.openFile(f.level, f.minTXID, f.maxTXID);
    const dec = new LtxDecoder(stream, {
      file: name,
      expect: f,
      onBytes: progress ? (n) => progress.add(n) : undefined,
      readSize: 1 << 18,
    });
    try {
      await this.#applyFrom(dec, f, name);
    } catch (e) {
      await dec.cancel().catch(() => {});
      if (e instanceof LtxFormatError) throw new ReplicaFileCheckError(f, name, e.reason);
      throw e;
    }
  }

  async #applyFrom(dec: LtxDecoder, f: ReplicaFile, name: string): Promise<void> {
    const h = await dec.readHeader();
    if (this.pageSize === 0) this.pageSize = h.pageSize;
    const pageSize = this.pageSize;
    if (h.pageSize !== pageSize) {
      throw new ReplicaFileCheckError(f, name, `page size ${h.pageSize} differs from ${pageSize}`);
    }
    const checked = hasChecksums(h);
    if (!isSnapshot(h) && checked) {
      const before = f.minTXID === this.txid + 1n
        ? this.sum.value
        : this.#history.get(f.minTXID - 1n);
      if (before !== undefined && h.preApplyChecksum !== before) {
        throw new ReplicaFileCheckError(
          f,
          name,
          `pre-apply checksum ${
            formatChecksum(h.preApplyChecksum)
          } does not match the restored database at TXID ${formatTXID(f.minTXID - 1n)} (${
            formatChecksum(before)
          }): this file does not continue the files before it`,
          true,
        );
      }
    }
    const oldCommit = this.commit;
    let carried = 0; // pages above the old commit: what the database grows by
    const sum = this.sum;
    const pc = { hi: 0, lo: 0 };
    const old = { hi: 0, lo: 0 };
    const applied = (pgno: number, crc: Crc64) => {
      // arrays grow with the pages actually applied, never with the header's claim
      if (pgno >= this.#pcHi.length) this.#grow(pgno + 1);
      if (pgno > oldCommit) carried++;
      pageChecksumFromCrc(pgno, crc, pageSize, pc);
      old.hi = this.#pcHi[pgno];
      old.lo = this.#pcLo[pgno];
      sum.xor(old);
      sum.xor(pc);
      this.#pcHi[pgno] = pc.hi;
      this.#pcLo[pgno] = pc.lo;
    };
    const legacy = this.pool ? await this.#applyBatches(dec, this.pool, applied) : true;
    if (legacy) {
      // page by page on this thread (no pool, or LZ4-frame pages)
      const batch = new PageWriteBatch(this.fd, pageSize);
      for (let p = await dec.nextPage(batch.slot()); p; p = await dec.nextPage(batch.slot())) {
        batch.add(p.pgno);
        applied(p.pgno, p.crc);
      }
      batch.flush();
    } else {
      await dec.finishPages();
    }
    // the whole file is verified now (checksums, index, trailer)
    if (h.commit > oldCommit) {
      const lock = lockPageNumber(pageSize);
      const grows = h.commit - oldCommit - (lock > oldCommit && lock <= h.commit ? 1 : 0);
      if (carried < grows) {
        throw new ReplicaFileCheckError(
          f,
          name,
          `its header's commit says the database has ${h.commit} pages after it, up from ${oldCommit}, ` +
            `but it carries only ${carried} of the ${grows} pages that would add`,
        );
      }
    }
    // pages above the new commit are gone
    const top = Math.min(this.commit, this.#pcHi.length - 1);
    for (let p = h.commit + 1; p <= top; p++) {
      sum.xor({ hi: this.#pcHi[p], lo: this.#pcLo[p] });
      this.#pcHi[p] = 0;
      this.#pcLo[p] = 0;
    }
    this.commit = h.commit;
    fs.ftruncateSync(this.fd, this.commit * pageSize);
    const post = dec.trailer!.postApplyChecksum;
    this.checksums = checked;
    if (checked && post !== sum.value) {
      throw new ReplicaFileCheckError(
        f,
        name,
        `post-apply checksum ${formatChecksum(post)} does not match the restored database ${
          formatChecksum(sum.value)
        }`,
      );
    }
    this.txid = f.maxTXID;
    this.#remember(this.txid, sum.value);
  }

  /**
   * Decodes the file's pages in batches on the pool's threads, a few batches
   * in flight while this thread reads ahead, and writes each batch's runs of
   * consecutive pages with one call each. Returns true when the rest of the
   * file is in the legacy page form (read page by page), false at its end.
   */
  async #applyBatches(
    dec: LtxDecoder,
    pool: PagePool,
    applied: (pgno: number, crc: Crc64) => void,
  ): Promise<boolean> {
    const ps = this.pageSize;
    const per = Math.max(1, Math.floor(WRITE_BATCH / ps));
    const bound = ps + Math.floor(ps / 255) + 16;
    const free: { raw: RawPageBatch; out: Uint8Array }[] = [];
    const inflight: {
      raw: RawPageBatch;
      out: Uint8Array;
      n: number;
      done: Promise<DecodedBatch>;
    }[] = [];
    const crc = { hi: 0, lo: 0 };
    const consume = async () => {
      const job = inflight.shift()!;
      const d = await job.done;
      // the buffers were lent to a worker: these are theirs again
      job.raw.src = new Uint8Array(d.src.buffer);
      const out = new Uint8Array(d.out.buffer);
      dec.acceptBatch(job.raw, job.n, d.crcHi, d.crcLo, d.failed, d.reason);
      const pgnos = job.raw.pgno;
      let run = 0;
      for (let k = 0; k < job.n; k++) {
        crc.hi = d.crcHi[k];
        crc.lo = d.crcLo[k];
        applied(pgnos[k], crc);
        if (k + 1 === job.n || pgnos[k + 1] !== pgnos[k] + 1) {
          writeAll(this.fd, out, run * ps, (k + 1 - run) * ps, (pgnos[run] - 1) * ps);
          run = k + 1;
        }
      }
      free.push({ raw: job.raw, out });
    };
    let n: number;
    while (true) {
      const slot = free.pop() ?? {
        raw: {
          pgno: new Uint32Array(per),
          at: new Int32Array(per),
          len: new Int32Array(per),
          src: new Uint8Array(per * bound),
        },
        out: new Uint8Array(per * ps),
      };
      n = await dec.readBatch(slot.raw);
      if (n <= 0) {
        free.push(slot);
        break;
      }
      const done = pool.decode({
        pageSize: ps,
        src: slot.raw.src,
        at: slot.raw.at.slice(0, n),
        len: slot.raw.len.slice(0, n),
        out: slot.out.subarray(0, n * ps),
      });
      // a batch left in flight when an earlier one fails is never awaited: not an unhandled rejection
      done.catch(() => {});
      inflight.push({ ...slot, n, done });
      if (inflight.length >= pool.depth) await consume();
    }
    while (inflight.length > 0) await consume();
    return n < 0;
  }

  /** Records the checksum at a TXID passed (a bounded history, for files that start earlier). */
  #remember(txid: bigint, checksum: bigint): void {
    this.#history.set(txid, checksum);
    if (this.#history.size > HISTORY) {
      this.#history.delete(this.#history.keys().next().value!);
    }
  }

  #grow(n: number): void {
    [this.#pcHi, this.#pcLo] = growPageChecksums(this.#pcHi, this.#pcLo, n);
  }
}

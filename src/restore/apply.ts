/**
 * Applying LTX files, in order, to a database file open at `fd`: pages are
 * written in place, pages above the new commit cut off, and the rolling
 * database checksum kept from cached per-page checksums so that each file's
 * pre-apply and post-apply checksums are checked against what was written.
 */

import * as fs from "node:fs";
import {
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
} from "../ltx/mod.ts";
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

export class PageApplier {
  readonly fd: number;
  pageSize = 0;
  /** Database size in pages. */
  commit = 0;
  /** The TXID the file is at (0 before the first file). */
  txid = 0n;
  /** False once a file without checksums was applied: nothing more can be checked. */
  checksums = true;
  readonly sum = new DatabaseChecksum();
  #pcHi = new Uint32Array(1024);
  #pcLo = new Uint32Array(1024);
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
    const dec = new LtxDecoder(progress ? progress.wrap(stream) : stream, {
      file: name,
      expect: f,
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
    if (!hasChecksums(h)) this.checksums = false;
    if (!isSnapshot(h) && hasChecksums(h) && this.checksums) {
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
    for (let p = await dec.nextPage(); p; p = await dec.nextPage()) {
      // arrays grow with the pages actually applied, never with the header's claim
      if (p.pgno >= this.#pcHi.length) this.#grow(p.pgno + 1);
      if (p.pgno > oldCommit) carried++;
      fs.writeSync(this.fd, p.data, 0, p.data.length, (p.pgno - 1) * pageSize);
      pageChecksumFromCrc(p.pgno, p.crc, pageSize, pc);
      sum.xor({ hi: this.#pcHi[p.pgno], lo: this.#pcLo[p.pgno] });
      sum.xor(pc);
      this.#pcHi[p.pgno] = pc.hi;
      this.#pcLo[p.pgno] = pc.lo;
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
    if (this.checksums && post !== sum.value) {
      throw new ReplicaFileCheckError(
        f,
        name,
        `post-apply checksum ${formatChecksum(post)} does not match the restored database ${
          formatChecksum(sum.value)
        }`,
      );
    }
    this.txid = f.maxTXID;
    if (this.checksums) this.#remember(this.txid, sum.value);
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

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
    return a;
  }

  /**
   * Applies one file. Its pre-apply checksum is checked when it starts right
   * after the current TXID; a file that starts earlier (a compacted file
   * covering the current TXID) is checked by its post-apply checksum alone.
   */
  async apply(
    client: ReplicaClient,
    f: ReplicaFile,
    progress?: ProgressCounter | null,
  ): Promise<void> {
    const name = replicaFileLabel(client.location, f);
    const stream = await client.openFile(f.level, f.minTXID, f.maxTXID);
    const dec = new LtxDecoder(progress ? progress.wrap(stream) : stream, { file: name });
    const h = await dec.readHeader();
    if (this.pageSize === 0) this.pageSize = h.pageSize;
    const pageSize = this.pageSize;
    if (h.pageSize !== pageSize) {
      throw new LtxFormatError(name, `page size ${h.pageSize} differs from ${pageSize}`);
    }
    if (!hasChecksums(h)) this.checksums = false;
    if (
      !isSnapshot(h) && hasChecksums(h) && this.checksums && f.minTXID === this.txid + 1n &&
      h.preApplyChecksum !== this.sum.value
    ) {
      throw new RestoreError(
        `${name}: pre-apply checksum ${
          formatChecksum(h.preApplyChecksum)
        } does not match the restored database ${
          formatChecksum(this.sum.value)
        } (the replica's history is broken here)`,
      );
    }
    this.#grow(h.commit + 1);
    const pcHi = this.#pcHi;
    const pcLo = this.#pcLo;
    const sum = this.sum;
    const pc = { hi: 0, lo: 0 };
    for (let p = await dec.nextPage(); p; p = await dec.nextPage()) {
      fs.writeSync(this.fd, p.data, 0, p.data.length, (p.pgno - 1) * pageSize);
      pageChecksumFromCrc(p.pgno, p.crc, pageSize, pc);
      sum.xor({ hi: pcHi[p.pgno], lo: pcLo[p.pgno] });
      sum.xor(pc);
      pcHi[p.pgno] = pc.hi;
      pcLo[p.pgno] = pc.lo;
    }
    // pages above the new commit are gone
    for (let p = h.commit + 1; p <= this.commit; p++) {
      sum.xor({ hi: pcHi[p], lo: pcLo[p] });
      pcHi[p] = 0;
      pcLo[p] = 0;
    }
    this.commit = h.commit;
    fs.ftruncateSync(this.fd, this.commit * pageSize);
    const post = dec.trailer!.postApplyChecksum;
    if (this.checksums && post !== sum.value) {
      throw new RestoreError(
        `${name}: post-apply checksum ${
          formatChecksum(post)
        } does not match the restored database ${formatChecksum(sum.value)}`,
      );
    }
    this.txid = f.maxTXID;
  }

  #grow(n: number): void {
    [this.#pcHi, this.#pcLo] = growPageChecksums(this.#pcHi, this.#pcLo, n);
  }
}

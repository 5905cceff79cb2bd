/**
 * Reads a list of pages (each from the database file or a WAL frame) with
 * few, large reads: neighbouring pages of one file, in ascending offsets
 * with small gaps, are read together into one reused buffer. A capture of
 * appended rows, a full copy and a snapshot read whole runs at once instead
 * of one system call per page; scattered pages cost one read each, as before.
 */

import type { PositionalFile } from "./files.ts";

/** Where one page's bytes are: `file` at `offset`, or beyond its end (zeros). */
export interface PageSource {
  file: PositionalFile;
  offset: number;
}

/** The largest read (bytes). */
const RUN_BYTES = 1 << 20;
/** Bytes between two pages that one read still spans (a WAL frame header is 24). */
const MAX_GAP = 1 << 12;

export class PageRunReader {
  readonly #pageSize: number;
  readonly #source: (i: number) => PageSource;
  readonly #count: number;
  #buf: Uint8Array;
  #zeros: Uint8Array;
  #file: PositionalFile | null = null;
  #start = 0;
  #len = 0;

  /**
   * `source(i)` says where the i-th page of `count` is (it may return the
   * same object each time, changed); pages are then read in that order.
   */
  constructor(pageSize: number, count: number, source: (i: number) => PageSource) {
    this.#pageSize = pageSize;
    this.#count = count;
    this.#source = source;
    this.#buf = new Uint8Array(Math.max(pageSize, Math.min(RUN_BYTES, count * (pageSize + 24))));
    this.#zeros = new Uint8Array(pageSize);
  }

  /**
   * The i-th page: a view valid until the next call (copy it to keep it).
   * Bytes past the end of its file read as zeros.
   */
  page(i: number): Uint8Array {
    const ps = this.#pageSize;
    const s = this.#source(i);
    const file = s.file;
    const offset = s.offset;
    let at = offset - this.#start;
    if (file !== this.#file || at < 0 || at + ps > this.#len) {
      this.#fill(i, file, offset);
      at = 0;
    }
    if (at + ps <= this.#len) return this.#buf.subarray(at, at + ps);
    // short: the file ends inside (or before) the page
    const page = this.#zeros.fill(0);
    if (at < this.#len) page.set(this.#buf.subarray(at, this.#len));
    return page;
  }

  /** Reads the run of pages from i on that one read can serve. */
  #fill(i: number, file: PositionalFile, offset: number): void {
    const ps = this.#pageSize;
    let end = offset + ps;
    for (let j = i + 1; j < this.#count; j++) {
      const s = this.#source(j);
      if (s.file !== file || s.offset < end || s.offset - end > MAX_GAP) break;
      if (s.offset + ps - offset > this.#buf.length) break;
      end = s.offset + ps;
    }
    this.#file = file;
    this.#start = offset;
    this.#len = file.readInto(offset, this.#buf.subarray(0, end - offset));
  }
}

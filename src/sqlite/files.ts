/**
 * Positional reads of the database and WAL files through descriptors opened
 * once and kept for the monitor's life (closing any descriptor of the database
 * file would drop SQLite's POSIX locks held by this process).
 */

import * as fs from "node:fs";

export class PositionalFile {
  readonly path: string;
  #fd: number | null = null;

  constructor(path: string) {
    this.path = path;
  }

  /** Opens the file read-only if it exists; returns false when it does not. */
  open(): boolean {
    if (this.#fd !== null) return true;
    try {
      this.#fd = fs.openSync(this.path, "r");
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
  }

  size(): number {
    if (!this.open()) return 0;
    return fs.fstatSync(this.#fd!).size;
  }

  /** Reads up to `length` bytes at `offset` (fewer at end of file). */
  readAt(offset: number, length: number): Uint8Array {
    const buf = new Uint8Array(length);
    const got = this.readInto(offset, buf);
    return got === length ? buf : buf.subarray(0, got);
  }

  /** Reads into `buf` at `offset` (no allocation); returns how many bytes were read. */
  readInto(offset: number, buf: Uint8Array): number {
    if (!this.open()) return 0;
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(this.#fd!, buf, got, buf.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  /** The open file's identity (`device:inode`), null when it is not open. */
  identity(): string | null {
    if (this.#fd === null) return null;
    const s = fs.fstatSync(this.#fd, { bigint: true });
    return `${s.dev}:${s.ino}`;
  }

  /** Only at the end of the monitor's life, or when the file at its path was replaced. */
  close(): void {
    if (this.#fd !== null) fs.closeSync(this.#fd);
    this.#fd = null;
  }
}

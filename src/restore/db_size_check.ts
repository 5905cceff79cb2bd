/**
 * The restored file against its own SQLite header: the page size (offset 16)
 * must be the LTX files' page size, and when the in-header database size
 * (offset 28) is valid (its version-valid-for number at offset 92 equals the
 * change counter at offset 24, as every SQLite since 3.7.0 writes it) the
 * file must be exactly that many pages. SQLite believes the header and
 * ignores pages past it, so a restore whose last file claimed a larger
 * commit would otherwise pass the integrity check with a file of any size.
 */

import * as fs from "node:fs";
import { RestoreError } from "./apply.ts";

const SQLITE_MAGIC = "SQLite format 3\0";

/** The restored database does not match its own header. */
export class RestoredSizeError extends RestoreError {
  constructor(what: string, reason: string) {
    super(`restored database ${what}: ${reason}`);
    this.name = "RestoredSizeError";
  }
}

/**
 * Checks the database open at `fd` against its header; `what` names it in
 * errors. A file without a SQLite header is left to the integrity check.
 */
export function checkRestoredSize(fd: number, pageSize: number, what: string): void {
  const size = fs.fstatSync(fd).size;
  if (size === 0) return; // a deleted database (commit 0)
  const head = new Uint8Array(100);
  const got = fs.readSync(fd, head, 0, 100, 0);
  // not a database at all: the integrity check says so (synthetic pages in tests)
  if (got < 100 || new TextDecoder().decode(head.subarray(0, 16)) !== SQLITE_MAGIC) return;
  const dv = new DataView(head.buffer);
  const raw = dv.getUint16(16);
  const headerPageSize = raw === 1 ? 65536 : raw;
  if (headerPageSize !== pageSize) {
    throw new RestoredSizeError(
      what,
      `its header says pages of ${headerPageSize} bytes, the replica's files hold ${pageSize}-byte pages`,
    );
  }
  const pages = dv.getUint32(28);
  const valid = pages !== 0 && dv.getUint32(24) === dv.getUint32(92);
  if (valid && pages * pageSize !== size) {
    throw new RestoredSizeError(
      what,
      `its header says ${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes), ` +
        `the restored file has ${size} bytes (${size / pageSize} pages): ` +
        `the last file's page count does not match the database it carries`,
    );
  }
}

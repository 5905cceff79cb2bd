/**
 * The rolling checksum of a live database as its readers see it now: the
 * database file overlaid with the WAL's committed frames, read raw while a
 * read transaction of our own keeps the WAL from being restarted under us.
 * Used by `strata verify` (another process than any `strata replicate`).
 */

import { DatabaseChecksum, lockPageNumber, pageChecksumFromCrc } from "../ltx/mod.ts";
import { crc64Update } from "../ltx/crc64.ts";
import {
  beginRead,
  endTransaction,
  headerChecksum,
  openConnection,
  pageSizeOf,
  parseWalHeader,
  PositionalFile,
  scanWal,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
} from "../sqlite/mod.ts";

export interface LiveChecksum {
  checksum: bigint;
  pageSize: number;
  /** Database size in pages. */
  commit: number;
}

export function liveDatabaseChecksum(dbPath: string, busyTimeoutMs = 5000): LiveChecksum {
  const conn = openConnection(dbPath, busyTimeoutMs);
  const db = new PositionalFile(dbPath);
  const wal = new PositionalFile(dbPath + "-wal");
  try {
    const pageSize = pageSizeOf(conn);
    beginRead(conn);
    db.open();
    let commit = Math.floor(db.size() / pageSize);
    const overlay = new Map<number, number>();
    const header = parseWalHeader(wal.readAt(0, WAL_HEADER_SIZE));
    if (header && header.pageSize === pageSize) {
      const scan = scanWal(
        (o, l) => wal.readAt(o, l),
        header,
        WAL_HEADER_SIZE,
        headerChecksum(header),
      );
      for (const f of scan.frames) overlay.set(f.pgno, f.offset);
      if (scan.commit) commit = scan.commit;
    }
    const sum = new DatabaseChecksum();
    const lock = lockPageNumber(pageSize);
    const crc = { hi: 0, lo: 0 };
    const pc = { hi: 0, lo: 0 };
    for (let p = 1; p <= commit; p++) {
      if (p === lock) continue;
      const off = overlay.get(p);
      let page = off !== undefined
        ? wal.readAt(off + WAL_FRAME_HEADER_SIZE, pageSize)
        : db.readAt((p - 1) * pageSize, pageSize);
      if (page.length < pageSize) {
        const full = new Uint8Array(pageSize);
        full.set(page);
        page = full;
      }
      crc64Update({ hi: 0, lo: 0 }, page, 0, page.length, crc);
      pageChecksumFromCrc(p, crc, pageSize, pc);
      sum.xor(pc);
    }
    return { checksum: sum.value, pageSize, commit };
  } finally {
    try {
      endTransaction(conn);
    } finally {
      conn.close(); // before our own descriptors of the file, so no lock is dropped early
      db.close();
      wal.close();
    }
  }
}

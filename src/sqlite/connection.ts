/** node:sqlite connection helpers: pragmas, the long read transaction, the write lock, checkpoints. */

import { DatabaseSync } from "node:sqlite";

export class DatabaseOpenError extends Error {
  constructor(path: string, reason: string) {
    super(`cannot use database ${path}: ${reason}`);
    this.name = "DatabaseOpenError";
  }
}

export interface CheckpointResult {
  busy: boolean;
  /** Frames in the WAL when the checkpoint ran. */
  log: number;
  /** Frames copied back into the database file. */
  checkpointed: number;
}

/** True when `e` is SQLite's "database is locked / busy". */
export function isBusyError(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e);
  return /database is locked|SQLITE_BUSY|database table is locked/i.test(m);
}

/** Opens a connection with a busy timeout (ms). */
export function openConnection(path: string, busyTimeoutMs: number): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs });
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  return db;
}

/** Sets WAL mode (converting a rollback-journal database); returns the previous mode. */
export function ensureWalMode(db: DatabaseSync, path: string): string {
  const before = String(
    (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
  );
  if (before.toLowerCase() === "wal") return before;
  const after = String(
    (db.prepare("PRAGMA journal_mode = wal").get() as { journal_mode: string }).journal_mode,
  );
  if (after.toLowerCase() !== "wal") {
    throw new DatabaseOpenError(path, `could not switch journal mode from ${before} to WAL`);
  }
  return before;
}

export function pageSizeOf(db: DatabaseSync): number {
  return Number((db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size);
}

/** Begins a read transaction and reads, so SQLite takes the read lock now. */
export function beginRead(db: DatabaseSync): void {
  db.exec("BEGIN");
  db.prepare("SELECT count(*) FROM sqlite_schema").get();
}

export function endTransaction(db: DatabaseSync): void {
  if (db.isTransaction) db.exec("ROLLBACK");
}

/** Tries to take the write lock; returns false when another writer holds it (busy). */
export function tryBeginWrite(db: DatabaseSync): boolean {
  // without waiting: node:sqlite is synchronous, so SQLite's busy handler would block the event
  // loop (uploads, other databases) for up to the busy timeout; callers retry on their own
  const timeout = (db.prepare("PRAGMA busy_timeout").get() as { timeout: number }).timeout;
  db.exec("PRAGMA busy_timeout = 0");
  try {
    db.exec("BEGIN IMMEDIATE");
    return true;
  } catch (e) {
    if (isBusyError(e)) return false;
    throw e;
  } finally {
    db.exec(`PRAGMA busy_timeout = ${timeout}`);
  }
}

export function checkpoint(db: DatabaseSync, mode: "PASSIVE" | "TRUNCATE"): CheckpointResult {
  const r = db.prepare(`PRAGMA wal_checkpoint(${mode})`).get() as {
    busy: number;
    log: number;
    checkpointed: number;
  };
  return { busy: r.busy !== 0, log: Number(r.log), checkpointed: Number(r.checkpointed) };
}

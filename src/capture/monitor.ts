/**
 * The per-database monitor: tails the WAL and captures committed frames into
 * L0 LTX files in the local meta directory, keeping the position (TXID,
 * rolling checksum) incrementally. See DESIGN.md "SQLite hazards":
 *
 * - connection R holds a read transaction at all times (except inside our
 *   own checkpoint), so no other connection can checkpoint past frames we
 *   have not captured, nor restart the WAL;
 * - connection W takes the write lock around "capture the tail, checkpoint",
 *   so no commit can land between the two;
 * - the database and WAL files are each opened once and read positionally.
 *
 * The newest local L0 file is the persisted position: its header holds the
 * TXID and the WAL salts/offset it was captured at, its trailer the database
 * checksum after it. Files are written atomically.
 */

import type { DatabaseSync } from "node:sqlite";
import * as fs from "node:fs";
import { Buffer } from "node:buffer";
import { basename, dirname, join } from "node:path";
import {
  DatabaseChecksum,
  formatChecksum,
  formatLtxFileName,
  formatPosition,
  growPageChecksums,
  lockPageNumber,
  LtxDecoder,
  LtxEncoder,
  makeHeader,
  pageChecksumFromCrc,
  parseLtxFileName,
  type Position,
  writerSink,
} from "../ltx/mod.ts";
import { type Crc64, crc64Update } from "../ltx/crc64.ts";
import { PageRunReader, type PageSource } from "../sqlite/page_runs.ts";
import { PagePool } from "../ltx/page_pool.ts";
import { BatchedPageWriter } from "../ltx/batch_encoder.ts";
import {
  beginRead,
  checkpoint,
  type CheckpointResult,
  DatabaseOpenError,
  endTransaction,
  ensureWalMode,
  headerChecksum,
  openConnection,
  pageSizeOf,
  parseWalHeader,
  PositionalFile,
  scanWal,
  tryBeginWrite,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  WAL_INDEX_CKPT_SIZE,
  WAL_INDEX_HEADER_SIZE,
  type WalChecksum,
  type WalHeader,
  walIndexBackfilled,
  walIndexEnd,
  walIndexFrameCount,
} from "../sqlite/mod.ts";
import { writeFileAtomic } from "../fsutil.ts";
import { log } from "../log.ts";
import {
  fileIdentity,
  MetaDirLock,
  prepareMetaDir,
  savedIdentity,
  saveIdentity,
} from "./meta_dir.ts";
import { DEFAULT_MODES, type FileModes, modesFor } from "../storage/file_modes.ts";

export interface MonitorOptions {
  dbPath: string;
  /** Local meta directory; default `.<db-file-name>-strata` beside the database. */
  metaPath?: string;
  busyTimeoutMs?: number;
  minCheckpointPageCount?: number;
  checkpointIntervalMs?: number;
  /** WAL size in pages past which a TRUNCATE checkpoint is forced; 0 disables. */
  truncatePageN?: number;
  /** Milliseconds since the epoch (injected for tests). */
  clock?: () => number;
}

/** One captured L0 file in the meta directory. */
export interface LocalFile {
  minTXID: bigint;
  maxTXID: bigint;
  path: string;
}

/** Counters for the metrics endpoint, since the monitor was created (read only outside). */
export interface MonitorStats {
  /** Captures that found the WAL changed (Litestream's "sync"), failed ones, time spent. */
  captures: number;
  captureErrors: number;
  /** The last capture failed because the local disk is full (ENOSPC): 1, else 0. */
  diskFull: number;
  captureSeconds: number;
  /** WAL bytes captured into L0 files. */
  walBytes: number;
  /** Checkpoints by mode (PASSIVE, TRUNCATE), failed ones, time spent. */
  checkpoints: Record<string, number>;
  checkpointErrors: Record<string, number>;
  checkpointSeconds: Record<string, number>;
}

export function defaultMetaPath(dbPath: string): string {
  return join(dirname(dbPath), `.${basename(dbPath)}-strata`);
}

interface WalState {
  header: WalHeader | null;
  /** End of captured frames (a commit boundary). */
  offset: number;
  checksum: WalChecksum;
  /** Latest frame offset of each page in the current WAL generation, up to `offset`. */
  overlay: Map<number, number>;
  /**
   * Frames before this offset are all in the database file (a checkpoint
   * copied them): their pages are read from there, because SQLite may
   * restart the WAL over them although our read transaction is open (see
   * `walIndexBackfilled`).
   */
  dbHolds: number;
}

/** The most frames a capture under the app's write lock takes, when it can (512 KiB of 4 KiB pages). */
const LOCKED_TAIL_FRAMES = 128;

/** Full copies and snapshots of at least this many pages are encoded on worker threads. */
const POOL_MIN_PAGES = 2048;

/**
 * A bulk writer is captured every this many new frames (4 MiB of 4 KiB
 * pages), between monitor ticks: the work is spread evenly, and the tail a
 * checkpoint must capture under the write lock stays short.
 */
const CAPTURE_BATCH_FRAMES = 1024;

/** A tiny async mutex so captures, checkpoints and snapshots never interleave. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export class Monitor {
  readonly dbPath: string;
  readonly metaPath: string;
  readonly ltxDir: string;
  readonly #opts: Required<Omit<MonitorOptions, "metaPath">>;
  #r!: DatabaseSync;
  #w!: DatabaseSync;
  #db: PositionalFile;
  #walFile: PositionalFile;
  #shmFile: PositionalFile;
  /** The WAL index header at the last pressure check (its change counter moves with each commit). */
  readonly #pressureIndex = new Uint8Array(48);
  /** Where each pressure check reads the WAL index header (reused: no allocation per check). */
  readonly #indexBuf = new Uint8Array(WAL_INDEX_HEADER_SIZE);
  /** Consecutive pressure checks that found no commit: callers check less often while idle. */
  quietChecks = 0;
  /**
   * At the WAL's growth between the last two pressure checks that saw it
   * grow, milliseconds until it reaches the checkpoint threshold (Infinity
   * when it is not growing; 0 at or past it).
   */
  thresholdInMs = Infinity;
  #pressureFrames = 0;
  #pressureAt = 0;
  /** When (clock) a check first saw the WAL end at #pressureFrames frames, and that WAL's salts. */
  #seenAt = 0;
  #seenSalt1 = 0;
  #seenSalt2 = 0;
  /** The newest timestamp given to a file: each is later than the one before. */
  #lastStamp = 0;
  /** When the capture being written read the WAL index's end. */
  #scanAt = 0;
  #pageSize = 0;
  #commit = 0;
  #txid = 0n;
  #sum = new DatabaseChecksum();
  #pcHi = new Uint32Array(0);
  #pcLo = new Uint32Array(0);
  #wal: WalState = {
    header: null,
    offset: WAL_HEADER_SIZE,
    checksum: { s0: 0, s1: 0 },
    overlay: new Map(),
    dbHolds: 0,
  };
  #restartExpected = false;
  #forceFull: string | null = null;
  #lastStat = "";
  #lastCheckpoint = 0;
  #dataSinceCheckpoint = false;
  #mutex = new Mutex();
  #closed = false;
  /** The final capture ran (see finish): no more captures. */
  #finished = false;
  /** Consecutive captures that found the WAL index unreadable (see #publishedEnd). */
  #indexMisses = 0;
  /** The database file was gone from its path at the last tick (said once). */
  #gone = false;
  /** True while the connections and descriptors are open on the file at `dbPath`. */
  #connected = false;
  /** The database file captured from (`device:inode`). */
  #identity = "";
  #lock: MetaDirLock | null = null;
  /** Modes of the local files and directories: no wider than the database's. */
  #modes: FileModes = DEFAULT_MODES;
  /**
   * New lineages since open: the database was replaced (found changed at
   * startup in another file, or replaced at its path while running) and
   * captured as a full copy. Replicators follow each with a fresh snapshot,
   * so the latest restore never replays the old history into the new one.
   */
  readonly lineage = { count: 0, reason: "" };
  readonly stats: MonitorStats = {
    captures: 0,
    captureErrors: 0,
    diskFull: 0,
    captureSeconds: 0,
    walBytes: 0,
    checkpoints: {},
    checkpointErrors: {},
    checkpointSeconds: {},
  };
  /**
   * Why the last capture could not be written (disk full, a read-only or
   * vanished meta directory), or null. While set, strata releases its read
   * transaction so the app's own checkpoints keep its WAL small, retries
   * with backoff, and recovers with a full copy chained to the last file
   * it did write.
   */
  problem: string | null = null;
  /** The newest local file's end: the position, consistent even while a capture runs. */
  #written: Position = { txid: 0n, postApplyChecksum: 0n };
  #recoverFrom: bigint | null = null;
  #readReleased = false;
  #retryAt = 0;
  #backoffMs = 0;
  /** Called after each new local file. */
  onFile: ((f: LocalFile) => void) | null = null;

  constructor(opts: MonitorOptions) {
    this.dbPath = opts.dbPath;
    this.metaPath = opts.metaPath ?? defaultMetaPath(opts.dbPath);
    this.ltxDir = join(this.metaPath, "ltx", "0");
    this.#opts = {
      dbPath: opts.dbPath,
      busyTimeoutMs: opts.busyTimeoutMs ?? 1000,
      minCheckpointPageCount: opts.minCheckpointPageCount ?? 1000,
      checkpointIntervalMs: opts.checkpointIntervalMs ?? 60_000,
      truncatePageN: opts.truncatePageN ?? 121_359,
      clock: opts.clock ?? Date.now,
    };
    this.#db = new PositionalFile(this.dbPath);
    this.#walFile = new PositionalFile(this.dbPath + "-wal");
    this.#shmFile = new PositionalFile(this.dbPath + "-shm");
  }

  /**
   * The persisted position: the newest local file's TXID and post-apply
   * checksum (never a capture half done: the rolling checksum moves page by
   * page while a file is written).
   */
  get position(): Position {
    return this.#written;
  }

  /** Modes for what is written into the meta directory (no wider than the database's). */
  get localModes(): FileModes {
    return this.#modes;
  }

  get pageSize(): number {
    return this.#pageSize;
  }

  get commit(): number {
    return this.#commit;
  }

  /** Connects, checks the database against the last position and captures what is new. */
  async open(): Promise<void> {
    const mode = await this.#checkDatabaseFile();
    if (mode !== null) this.#modes = modesFor(mode);
    await prepareMetaDir(this.metaPath, join("ltx", "0"), mode);
    this.#lock = await MetaDirLock.acquire(this.metaPath, this.dbPath);
    try {
      await this.#removeLeftovers();
      this.#connect();
      this.#lastCheckpoint = this.#opts.clock();
      const saved = await savedIdentity(this.metaPath);
      await this.#mutex.run(() => this.#startup(saved));
      if (saved !== this.#identity) {
        await saveIdentity(this.metaPath, this.#identity, this.#modes.file);
      }
    } catch (e) {
      this.#closed = true;
      this.#disconnect();
      this.#lock.release();
      throw e;
    }
  }

  /** The database file must exist and be a SQLite database; returns its mode (null without modes). */
  async #checkDatabaseFile(): Promise<number | null> {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(this.dbPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new DatabaseOpenError(
          this.dbPath,
          "no such file (the database must exist before replication)",
        );
      }
      throw e;
    }
    if (!st.isFile) throw new DatabaseOpenError(this.dbPath, "not a regular file");
    if (st.size > 0) {
      const head = new Uint8Array(16);
      const f = await Deno.open(this.dbPath);
      try {
        await f.read(head);
      } finally {
        f.close(); // before any SQLite connection exists, so no lock can be lost
      }
      if (new TextDecoder().decode(head) !== "SQLite format 3\0") {
        throw new DatabaseOpenError(this.dbPath, "not a SQLite database (bad file header)");
      }
    }
    return st.mode;
  }

  /** Opens both connections and the database's descriptor on the file now at `dbPath`. */
  #connect(): void {
    this.#r = openConnection(this.dbPath, this.#opts.busyTimeoutMs);
    const before = ensureWalMode(this.#r, this.dbPath);
    if (before.toLowerCase() !== "wal") {
      log("info", "switched database to WAL mode", { db: this.dbPath, from: before });
    }
    this.#w = openConnection(this.dbPath, this.#opts.busyTimeoutMs);
    this.#w.exec("PRAGMA wal_autocheckpoint = 0");
    this.#r.exec("PRAGMA wal_autocheckpoint = 0");
    this.#pageSize = pageSizeOf(this.#r);
    this.#db.open();
    this.#identity = this.#db.identity()!;
    this.#connected = true;
    this.#readReleased = false;
  }

  /** Closes what #connect opened (the read transaction ends with it). */
  #disconnect(): void {
    this.#connected = false;
    for (const c of [this.#r, this.#w]) {
      try {
        c?.close();
      } catch { /* closing anyway */ }
    }
    this.#db.close();
    this.#walFile.close();
    this.#shmFile.close();
  }

  /**
   * Removes what a killed strata left in the meta directory: half-written
   * local files and merges (`*.tmp`), snapshot and verification scratch files.
   */
  async #removeLeftovers(): Promise<void> {
    const patterns: [string, RegExp][] = [
      [this.ltxDir, /\.ltx\.[0-9a-f]{8}\.tmp$|^\.merge-[0-9a-f]{8}\.tmp$/],
      [
        this.metaPath,
        /^(snapshot-[0-9a-f]{8}\.ltx|(verify|replica-state)-[0-9a-f]{8}\.db)([.-].*)?$/,
      ],
    ];
    for (const [dir, re] of patterns) {
      try {
        for await (const e of Deno.readDir(dir)) {
          if (e.isFile && re.test(e.name)) await Deno.remove(join(dir, e.name)).catch(() => {});
        }
      } catch { /* nothing to clean */ }
    }
  }

  /** Reads the whole state under the write lock, then decides how to continue. */
  async #startup(savedId: string | null): Promise<void> {
    const last = await this.#newestLocalFile();
    const walEnd = last ? Number(last.header.walOffset + last.header.walSize) : 0;
    let atCommit = false;
    await this.#withWriteLock(() => {
      this.#rescanWal();
      this.#beginRead();
      // read from the WAL while no one can write to it (it may restart once the lock is released)
      atCommit = last !== null && this.#isCommitBoundary(walEnd);
      return Promise.resolve();
    }, 30_000);
    this.#rebuildPageChecksums();
    if (!last) {
      await this.#writeFull(null, "no previous position: starting with a snapshot");
      return;
    }
    const h = last.header;
    const cur = this.#wal.header;
    const sameWal = cur !== null && h.walOffset !== 0n && h.walSalt1 === cur.salt1 &&
      h.walSalt2 === cur.salt2 && walEnd <= this.#wal.offset;
    this.#txid = h.maxTXID;
    this.#written = { txid: h.maxTXID, postApplyChecksum: last.post };
    if (sameWal && walEnd === this.#wal.offset && this.#sum.value === last.post) {
      log("info", "resuming at last position", {
        db: this.dbPath,
        position: this.#positionString(),
      });
      this.#sum.set(last.post);
      this.#written = { txid: h.maxTXID, postApplyChecksum: last.post };
      return;
    }
    if (sameWal && walEnd < this.#wal.offset && atCommit) {
      // frames written while strata was stopped: capture them on top of the old position
      await this.#writeTail(last.post, walEnd);
      return;
    }
    if (this.#sum.value === last.post) {
      log(
        "info",
        "WAL changed while strata was stopped, but the database equals the last position",
        {
          db: this.dbPath,
          position: this.#positionString(),
        },
      );
      return;
    }
    if ((cur === null || !sameWal) && savedId === this.#identity) {
      // the same file: most likely the app wrote while strata was stopped and its WAL was
      // checkpointed (closing the app does) or restarted since: its frames are gone, its pages
      // are not. A file copied over it in place looks the same; a full copy is right for both.
      await this.#writeFull(
        last.post,
        `the database changed while strata was stopped beyond what its WAL holds (the app wrote and its WAL was checkpointed, or a file was copied over it in place); same database file, last position ${
          formatPosition({ txid: h.maxTXID, postApplyChecksum: last.post })
        }`,
        "info",
      );
      return;
    }
    const why = cur === null
      ? "the database was changed while strata was stopped and its WAL is empty or gone: it was checkpointed by another process, or replaced (a restored backup, a copied file)"
      : !sameWal
      ? "the database was changed while strata was stopped and its WAL is not the one captured: it was replaced (a restored backup, a copied file), or its WAL was checkpointed or reset by another process"
      : "the database was changed while strata was stopped: its content differs from the last captured position although the WAL continues it (edited outside SQLite's WAL, or a file copied in)";
    const reason = `${why}; last position ${
      formatPosition({ txid: h.maxTXID, postApplyChecksum: last.post })
    }, database checksum now ${formatChecksum(this.#sum.value)}`;
    this.#newLineage(reason);
    // a full copy chained to the last position (the replica's history stays
    // valid); replicators follow it with a fresh snapshot (a new lineage)
    await this.#writeFull(last.post, reason);
  }

  /**
   * Continues a replica's history when the database is exactly the state
   * the replica ends at, or was since start-up (`passedThrough`: a local file
   * ends in it; the app committed before the first sync): the local position
   * was lost, or another tool wrote the replica. A full copy of the current
   * state numbered past it, chained to its checksum. False (nothing
   * written) when the database differs, or is the replica's state without
   * having passed through it while numbered at or past the replica's TXID.
   */
  async continueFrom(replica: Position, reason: string, passedThrough = false): Promise<boolean> {
    return await this.#mutex.run(async () => {
      const same = this.#sum.value === replica.postApplyChecksum || passedThrough;
      if (!same) return false;
      if (this.#txid < replica.txid) {
        this.#txid = replica.txid;
      } else if (!passedThrough) {
        return false; // numbered at or past the replica without having been in its state
      }
      // the full copy is chained to the replica's state and numbered past both positions: the
      // next TXID when the app's commits since start-up brought the local numbering up to the
      // replica's, else a gap the replica fills with a snapshot (every local file before it
      // belongs to the numbering strata restarted with, and does not chain to the replica)
      await this.#writeFull(replica.postApplyChecksum, reason);
      return true;
    });
  }

  /**
   * Starts a new lineage after a divergence: a full copy of the captured
   * state as the next local file, numbered past both the local position and
   * `afterTXID` (the replica's newest TXID) so no TXID means two things.
   */
  async startNewLineage(afterTXID: bigint, reason: string): Promise<void> {
    await this.#mutex.run(async () => {
      if (this.#txid < afterTXID) this.#txid = afterTXID;
      await this.#writeFull(this.#sum.value, reason);
    });
  }

  #positionString(): string {
    return `${this.#txid.toString(16).padStart(16, "0")}/${formatChecksum(this.#sum.value)}`;
  }

  /** True when a commit frame ends exactly at `offset` in the current overlay scan. */
  #isCommitBoundary(offset: number): boolean {
    if (!this.#wal.header) return false;
    const frameSize = WAL_FRAME_HEADER_SIZE + this.#pageSize;
    if ((offset - WAL_HEADER_SIZE) % frameSize !== 0) return false;
    const fh = this.#walFile.readAt(offset - frameSize, 8);
    return fh.length === 8 && new DataView(fh.buffer).getUint32(4) !== 0;
  }

  /** Reads the WAL from its start: header, overlay, committed end, commit. */
  #rescanWal(): void {
    this.#walFile.open();
    const hb = this.#walFile.readAt(0, WAL_HEADER_SIZE);
    const header = parseWalHeader(hb);
    this.#wal = {
      header,
      offset: WAL_HEADER_SIZE,
      checksum: { s0: 0, s1: 0 },
      overlay: new Map(),
      dbHolds: 0,
    };
    this.#commit = Math.floor(this.#db.size() / this.#pageSize);
    if (!header) return;
    if (header.pageSize !== this.#pageSize) {
      throw new DatabaseOpenError(
        this.dbPath,
        `WAL page size ${header.pageSize} differs from database page size ${this.#pageSize}`,
      );
    }
    const scan = scanWal(
      (o, l) => this.#walFile.readAt(o, l),
      header,
      WAL_HEADER_SIZE,
      headerChecksum(header),
      // what readers see (read under the write lock, the index is whole then)
      walIndexEnd(this.#shmFile.readAt(0, WAL_INDEX_HEADER_SIZE), header) ?? Infinity,
    );
    this.#wal.checksum = scan.endOffset === WAL_HEADER_SIZE
      ? headerChecksum(header)
      : scan.checksum;
    this.#wal.offset = scan.endOffset;
    for (const f of scan.frames) this.#wal.overlay.set(f.pgno, f.offset);
    if (scan.commit) this.#commit = scan.commit;
  }

  /**
   * The timestamp of a file holding the state just captured: a moment the
   * database was in exactly that state. That is when this capture read the
   * WAL index's end, or earlier, when a WAL index check first saw the WAL end
   * where this capture ends (the state existed from then until the read:
   * the moment is within a check interval of the last commit, not up to a
   * monitor-interval later). Each file's is later than the one before, so a
   * time never names two states. `atCheck` false: now (full copies).
   */
  #stamp(atCheck = true): number {
    const now = this.#opts.clock();
    let t = now;
    const h = this.#wal.header;
    if (atCheck && this.#scanAt > 0) {
      t = Math.min(now, this.#scanAt);
      if (
        h && this.#seenAt > 0 && this.#pressureFrames === this.#walPages() &&
        this.#seenSalt1 === h.salt1 && this.#seenSalt2 === h.salt2
      ) {
        t = Math.min(t, this.#seenAt);
      }
    }
    if (t <= this.#lastStamp) t = this.#lastStamp + 1;
    this.#lastStamp = t;
    return t;
  }

  /** Where page `pgno` is as of the captured position: its latest WAL frame, else the database file. */
  #pageSource(pgno: number, out: PageSource): PageSource {
    const off = this.#wal.overlay.get(pgno);
    if (off !== undefined && off >= this.#wal.dbHolds) {
      out.file = this.#walFile;
      out.offset = off + WAL_FRAME_HEADER_SIZE;
    } else {
      out.file = this.#db;
      out.offset = (pgno - 1) * this.#pageSize;
    }
    return out;
  }

  /**
   * Reads pages `pgnos` (in that order) as of the captured position, in runs
   * (see PageRunReader); pages past the database file's end read as zeros.
   */
  #pages(pgnos: ArrayLike<number>): PageRunReader {
    const at: PageSource = { file: this.#db, offset: 0 };
    return new PageRunReader(this.#pageSize, pgnos.length, (i) => this.#pageSource(pgnos[i], at));
  }

  /**
   * Every page of the captured state into `enc`; a large database's pages
   * are compressed and checksummed on worker threads (PagePool) while this
   * thread reads on.
   */
  async #writeAllPages(enc: LtxEncoder): Promise<void> {
    const pgnos = this.#allPgnos();
    const pages = this.#pages(pgnos);
    if (pgnos.length < POOL_MIN_PAGES) {
      for (let i = 0; i < pgnos.length; i++) await enc.writePage(pgnos[i], pages.page(i));
      return;
    }
    const pool = new PagePool();
    try {
      const w = new BatchedPageWriter(enc, pool);
      for (let i = 0; i < pgnos.length; i++) await w.writePage(pgnos[i], pages.page(i));
      await w.flush();
    } finally {
      pool.close();
    }
  }

  /** Pages 1..commit without the lock page. */
  #allPgnos(): Uint32Array {
    const lock = lockPageNumber(this.#pageSize);
    const n = this.#commit - (lock <= this.#commit ? 1 : 0);
    const out = new Uint32Array(n);
    for (let p = 1, i = 0; p <= this.#commit; p++) if (p !== lock) out[i++] = p;
    return out;
  }

  #ensureCache(n: number): void {
    [this.#pcHi, this.#pcLo] = growPageChecksums(this.#pcHi, this.#pcLo, n + 1);
  }

  /** Reads every page of the current state into the page checksum cache. */
  #rebuildPageChecksums(): void {
    this.#ensureCache(this.#commit);
    this.#pcHi.fill(0);
    this.#pcLo.fill(0);
    const sum = new DatabaseChecksum();
    const crc = { hi: 0, lo: 0 };
    const pc = { hi: 0, lo: 0 };
    const pgnos = this.#allPgnos();
    const pages = this.#pages(pgnos);
    for (let i = 0; i < pgnos.length; i++) {
      const p = pgnos[i];
      const page = pages.page(i);
      crc64Update({ hi: 0, lo: 0 }, page, 0, page.length, crc);
      pageChecksumFromCrc(p, crc, this.#pageSize, pc);
      this.#pcHi[p] = pc.hi;
      this.#pcLo[p] = pc.lo;
      sum.xor(pc);
    }
    this.#sum = sum;
  }

  /** Sets page `p`'s checksum (from the CRC-64 of its bytes) in the cache and the rolling sum. */
  #updatePage(p: number, crc: Crc64): void {
    const pc = { hi: 0, lo: 0 };
    pageChecksumFromCrc(p, crc, this.#pageSize, pc);
    this.#sum.xor({ hi: this.#pcHi[p], lo: this.#pcLo[p] });
    this.#sum.xor(pc);
    this.#pcHi[p] = pc.hi;
    this.#pcLo[p] = pc.lo;
  }

  /** Shrinks or grows the cache's view of the database to `commit` pages. */
  #setCommit(commit: number): void {
    this.#ensureCache(commit);
    for (let p = commit + 1; p <= this.#commit; p++) {
      this.#sum.xor({ hi: this.#pcHi[p], lo: this.#pcLo[p] });
      this.#pcHi[p] = 0;
      this.#pcLo[p] = 0;
    }
    this.#commit = commit;
  }

  async #newestLocalFile(): Promise<
    { maxTXID: bigint; post: bigint; header: import("../ltx/header.ts").LtxHeader } | null
  > {
    const files = await this.localFiles();
    for (let i = files.length - 1; i >= 0; i--) {
      const f = files[i];
      try {
        const file = await Deno.open(f.path);
        const dec = new LtxDecoder(file.readable, { file: f.path });
        const header = await dec.readHeader();
        const trailer = await dec.verify();
        return { maxTXID: header.maxTXID, post: trailer.postApplyChecksum, header };
      } catch (e) {
        log("warn", "ignoring unreadable local LTX file", { path: f.path, error: e });
        await Deno.remove(f.path).catch(() => {});
      }
    }
    return null;
  }

  /** L0 files in the meta directory, in TXID order. */
  async localFiles(): Promise<LocalFile[]> {
    const out: LocalFile[] = [];
    try {
      for await (const e of Deno.readDir(this.ltxDir)) {
        const r = e.isFile ? parseLtxFileName(e.name) : null;
        if (r) out.push({ ...r, path: join(this.ltxDir, e.name) });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    out.sort((a, b) => (a.minTXID < b.minTXID ? -1 : a.minTXID > b.minTXID ? 1 : 0));
    return out;
  }

  /** Writes an L0 file holding every page of the current state (a snapshot when `pre` is null). */
  async #writeFull(
    pre: bigint | null,
    reason: string,
    level: "info" | "warn" | "error" = pre === null ? "info" : "warn",
  ): Promise<void> {
    const txid = pre === null ? 1n : this.#txid + 1n;
    const snapshot = pre === null;
    log(level, "capturing a full copy of the database", {
      db: this.dbPath,
      txid,
      reason,
    });
    const w = this.#wal;
    const header = makeHeader({
      pageSize: this.#pageSize,
      commit: this.#commit,
      minTXID: snapshot ? 1n : txid,
      maxTXID: txid,
      timestamp: BigInt(this.#stamp(false)),
      preApplyChecksum: snapshot ? 0n : pre!,
      walOffset: w.header ? BigInt(WAL_HEADER_SIZE) : 0n,
      walSize: w.header ? BigInt(w.offset - WAL_HEADER_SIZE) : 0n,
      walSalt1: w.header?.salt1 ?? 0,
      walSalt2: w.header?.salt2 ?? 0,
    });
    await this.#writeFile(header, (enc) => this.#writeAllPages(enc), true);
    this.#txid = txid;
  }

  /** Captures committed frames after `fromOffset` (same WAL generation) on top of checksum `pre`. */
  async #writeTail(pre: bigint, fromOffset: number): Promise<void> {
    // Rebuild the cache's view at `fromOffset` is not possible (older page
    // versions may be gone); the full-state checksum is already current, so
    // write the pages changed after `fromOffset` with post = current state.
    // A page changed there has its latest frame there (the overlay, read
    // under the write lock: the WAL's frames may have been overwritten since).
    const pages: number[] = [];
    for (const [p, off] of this.#wal.overlay) if (off >= fromOffset) pages.push(p);
    const sorted = pages.filter((p) => p <= this.#commit).sort((a, b) => a - b);
    log("info", "capturing frames written while strata was stopped", {
      db: this.dbPath,
      pages: sorted.length,
    });
    await this.#writeIncrement(pre, sorted, fromOffset, false);
  }

  async #writeIncrement(
    pre: bigint,
    pgnos: number[],
    fromOffset: number,
    update: boolean,
  ): Promise<void> {
    const txid = this.#txid + 1n;
    const w = this.#wal;
    const header = makeHeader({
      pageSize: this.#pageSize,
      commit: this.#commit,
      minTXID: txid,
      maxTXID: txid,
      timestamp: BigInt(this.#stamp()),
      preApplyChecksum: pre,
      walOffset: BigInt(fromOffset),
      walSize: BigInt(w.offset - fromOffset),
      walSalt1: w.header!.salt1,
      walSalt2: w.header!.salt2,
    });
    await this.#writeFile(header, async (enc) => {
      const pages = this.#pages(pgnos);
      for (let i = 0; i < pgnos.length; i++) {
        await enc.writePage(pgnos[i], pages.page(i));
        if (update) this.#updatePage(pgnos[i], enc.lastPageCrc);
      }
    });
    this.#txid = txid;
  }

  async #writeFile(
    header: ReturnType<typeof makeHeader>,
    body: (enc: LtxEncoder) => Promise<void>,
    fullCopy = false,
  ): Promise<void> {
    const name = formatLtxFileName(header.minTXID, header.maxTXID);
    const path = join(this.ltxDir, name);
    try {
      await Deno.mkdir(this.ltxDir, { recursive: true, mode: this.#modes.dir });
      await writeFileAtomic(path, async (file) => {
        // a full copy's pages must give the position's checksum (the next file starts there)
        const enc = new LtxEncoder(writerSink(file), header, { file: path, fullCopy });
        await body(enc);
        await enc.finish(this.#sum.value);
      }, this.#modes.file);
    } catch (e) {
      this.#writeFailed(path, e as Error);
      throw e;
    }
    this.#written = { txid: header.maxTXID, postApplyChecksum: this.#sum.value };
    this.#recovered();
    this.onFile?.({ minTXID: header.minTXID, maxTXID: header.maxTXID, path });
  }

  #recovered(): void {
    if (this.problem === null) return;
    log("info", "capturing again: local files are written", {
      db: this.dbPath,
      after: this.problem,
    });
    this.problem = null;
    this.#backoffMs = 0;
  }

  /**
   * A local file could not be written: the in-memory position may be ahead
   * of the files, so the next capture is a full copy chained to the last
   * file written. Meanwhile the read transaction is released (the app's
   * checkpoints must not wait for a disk to be freed) and captures back off.
   */
  #writeFailed(path: string, e: Error): void {
    const msg = `cannot write local file ${path}: ${e.message}`;
    if (msg !== this.problem) {
      log("error", "capture failed: keeping the app running, retrying with backoff", {
        db: this.dbPath,
        error: msg,
      });
    }
    this.problem = msg;
    this.#forceFull = `recovering after a failed write (${e.message})`;
    this.#recoverFrom ??= this.#written.postApplyChecksum;
    if (!this.#readReleased && this.#r) {
      try {
        endTransaction(this.#r);
        this.#readReleased = true;
      } catch { /* not in a transaction */ }
    }
    this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, 500), 30_000);
    this.#retryAt = this.#opts.clock() + this.#backoffMs;
  }

  /** The WAL's fingerprint: its stat (size, mtime, ctime, inode) and the WAL index header. */
  #walStat(): string {
    // The WAL index header too (its change counter moves with every commit): a
    // commit that rewrites frames in place (a restarted WAL) keeps the WAL's
    // size, and lands within the file system's coarse mtime tick of our last
    // look often enough; stat alone would miss it until the next write.
    const index = Buffer.from(this.#shmFile.readAt(0, WAL_INDEX_HEADER_SIZE / 2)).toString("hex");
    try {
      const s = fs.statSync(this.dbPath + "-wal", { bigint: true });
      return `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}:${index}`;
    } catch {
      return `missing:${index}`;
    }
  }

  /**
   * True when the WAL has reached the checkpoint threshold: capture and
   * checkpoint now instead of at the next tick. Between ticks an app's own
   * autocheckpoint attempts (which our read transaction keeps from finishing)
   * get dearer with every frame, so a busy app is relieved within
   * milliseconds. Costs one 96-byte read of the WAL index (no allocation
   * kept); `quietChecks` counts the checks that found no new commit.
   */
  underPressure(): boolean {
    if (this.#closed || !this.#connected || this.#pageSize === 0) {
      this.quietChecks++; // nothing to watch (the file gone, say): checked at the idle pace
      return false;
    }
    const index = this.#indexBuf;
    const whole = this.#shmFile.readInto(0, index) === WAL_INDEX_HEADER_SIZE;
    const seen = this.#pressureIndex;
    let same = whole;
    for (let i = 0; same && i < 48; i++) same = index[i] === seen[i];
    if (same) {
      this.quietChecks++;
      return false;
    }
    this.quietChecks = 0;
    if (!whole) return false;
    seen.set(index.subarray(0, 48));
    const frames = walIndexFrameCount(index);
    if (frames === null) return false;
    const now = performance.now();
    // a restarted WAL (fewer frames) grew by all it holds
    const grown = frames >= this.#pressureFrames ? frames - this.#pressureFrames : frames;
    const captured = this.#walPages();
    const left = Math.min(
      this.#opts.minCheckpointPageCount,
      (frames >= captured ? captured : 0) + CAPTURE_BATCH_FRAMES,
    ) - frames;
    this.thresholdInMs = left <= 0
      ? 0
      : grown === 0
      ? Infinity
      : left * (now - this.#pressureAt) / grown;
    this.#pressureFrames = frames;
    this.#pressureAt = now;
    this.#seenAt = this.#opts.clock();
    const dv = new DataView(index.buffer, index.byteOffset);
    this.#seenSalt1 = dv.getUint32(32);
    this.#seenSalt2 = dv.getUint32(36);
    return left <= 0;
  }

  /**
   * Captures new committed frames into an L0 file (no-op when the WAL did not
   * change). Returns true when a file was written. `indexUnchanged`: the
   * caller saw the WAL index header unchanged since the last capture (no
   * commit, no checkpoint restart): only the file's identity and a due
   * checkpoint are looked at.
   */
  async capture(indexUnchanged = false): Promise<boolean> {
    if (this.#closed || this.#finished) return false;
    const atPath = fileIdentity(this.dbPath);
    if (atPath !== this.#identity || !this.#connected) {
      return await this.#mutex.run(() => this.#followFileAtPath(atPath));
    }
    if (this.#gone) {
      log("info", "the database file is back at its path", { db: this.dbPath });
      this.#gone = false;
      this.problem = null;
    }
    if (this.problem !== null && this.#opts.clock() < this.#retryAt) return false;
    if (indexUnchanged && this.problem === null && !this.#forceFull) {
      await this.#maybeCheckpoint();
      return false;
    }
    // cheap idle check: a stat of the WAL, nothing else
    const stat = this.#walStat();
    if (stat === this.#lastStat && !this.#forceFull) {
      await this.#maybeCheckpoint();
      return false;
    }
    const t0 = performance.now();
    this.stats.captures++;
    let wrote: boolean;
    try {
      wrote = await this.#mutex.run(() => this.#captureLocked());
    } catch (e) {
      this.stats.captureErrors++;
      const code = (e as { code?: string }).code;
      if (code === "ENOSPC" || /ENOSPC|No space left on device/i.test(String(e))) {
        this.stats.diskFull = 1;
      }
      throw e;
    } finally {
      this.stats.captureSeconds += (performance.now() - t0) / 1000;
    }
    this.#lastStat = stat;
    this.stats.diskFull = 0;
    await this.#maybeCheckpoint();
    return wrote;
  }

  async #captureLocked(): Promise<boolean> {
    if (this.#forceFull) {
      const why = this.#forceFull;
      this.#forceFull = null;
      const pre = this.#recoverFrom ?? this.#sum.value;
      this.#recoverFrom = null;
      if (this.#readReleased) {
        beginRead(this.#r);
        this.#readReleased = false;
      }
      this.#rescanWal();
      this.#noteBackfill();
      this.#rebuildPageChecksums();
      if (this.#sum.value === pre) {
        this.#recovered(); // nothing new since the last file written
        return false;
      }
      await this.#writeFull(pre, why);
      return true;
    }
    this.#walFile.open();
    const header = parseWalHeader(this.#walFile.readAt(0, WAL_HEADER_SIZE));
    if (!header) return false; // empty or truncated WAL: nothing committed since
    const w = this.#wal;
    if (!w.header || header.salt1 !== w.header.salt1 || header.salt2 !== w.header.salt2) {
      if (!w.header || this.#restartExpected) {
        // a restart after our own full checkpoint (or the first WAL): continue from its start
        this.#wal = {
          header,
          offset: WAL_HEADER_SIZE,
          checksum: headerChecksum(header),
          overlay: new Map(),
          dbHolds: 0,
        };
        this.#restartExpected = false;
      } else {
        return await this.#recoverFull("the WAL was restarted by another process (salts changed)");
      }
    } else {
      const frameSize = WAL_FRAME_HEADER_SIZE + this.#pageSize;
      if (this.#walFile.size() < w.offset) {
        return await this.#recoverFull("the WAL is shorter than the captured offset");
      }
      if (w.offset > WAL_HEADER_SIZE) {
        const fh = this.#walFile.readAt(w.offset - frameSize, WAL_FRAME_HEADER_SIZE);
        const dv = new DataView(fh.buffer, fh.byteOffset);
        if (dv.getUint32(16) !== w.checksum.s0 || dv.getUint32(20) !== w.checksum.s1) {
          return await this.#recoverFull("the last captured WAL frame was overwritten");
        }
      }
    }
    const end = this.#publishedEnd(this.#wal.header!);
    if (end === null) return false; // the index is mid-update: the next tick reads it
    const scan = scanWal(
      (o, l) => this.#walFile.readAt(o, l),
      this.#wal.header!,
      this.#wal.offset,
      this.#wal.checksum,
      end,
    );
    // every frame captured (to the index's end, or the WAL's physical end when the index cannot
    // be read) was committed by now: the file's time. Read before the index or the frames, a
    // commit landing in between would be in a file stamped before it.
    this.#scanAt = this.#opts.clock();
    if (scan.frames.length === 0) return false;
    const from = this.#wal.offset;
    this.stats.walBytes += scan.endOffset - from;
    const oldCommit = this.#commit;
    for (const f of scan.frames) this.#wal.overlay.set(f.pgno, f.offset);
    this.#wal.offset = scan.endOffset;
    this.#wal.checksum = scan.checksum;
    const pre = this.#sum.value;
    this.#setCommit(scan.commit);
    const changed = new Set<number>();
    for (const f of scan.frames) if (f.pgno <= scan.commit) changed.add(f.pgno);
    // pages that the database grew into without a frame: their content is what SQLite would read
    for (let p = oldCommit + 1; p <= scan.commit; p++) changed.add(p);
    changed.delete(lockPageNumber(this.#pageSize));
    const pgnos = [...changed].sort((a, b) => a - b);
    await this.#writeIncrement(pre, pgnos, from, true);
    this.#dataSinceCheckpoint = true;
    return true;
  }

  /**
   * The end of the frames SQLite's readers see (walIndexEnd): only those are
   * captured, never frames a killed writer left unpublished (the next writer
   * overwrites them). Null (wait for the next tick) while the index cannot
   * say, at most a few ticks in a row; then, or without an index, no bound.
   */
  #publishedEnd(h: WalHeader): number | null {
    const end = walIndexEnd(this.#shmFile.readAt(0, WAL_INDEX_HEADER_SIZE), h);
    if (end !== null || this.#indexMisses >= 10) {
      this.#indexMisses = 0;
      return end ?? Infinity;
    }
    this.#indexMisses++;
    return null;
  }

  #newLineage(reason: string): void {
    this.lineage.count++;
    this.lineage.reason = reason;
  }

  /**
   * The file at the database's path is not the one captured (replaced by
   * `mv`, deleted and created again, or gone). Captures what the old file
   * committed last, then opens the new one and captures it in full, chained
   * to the last position (a new lineage: replicators follow with a
   * snapshot). Nothing at the path: says so once and waits for a file.
   */
  async #followFileAtPath(atPath: string | null): Promise<boolean> {
    if (this.#closed) return false;
    if (atPath === null) {
      if (!this.#gone) {
        log(
          "error",
          "the database file is gone from its path (deleted or renamed): nothing is captured until a database is there again",
          {
            db: this.dbPath,
            position: formatPosition(this.#written),
          },
        );
      }
      this.#gone = true;
      this.problem = `database file ${this.dbPath} is gone (deleted or renamed away)`;
      return false;
    }
    const old = this.#identity;
    if (this.#connected) {
      if (!this.#readReleased && this.problem === null) await this.#captureReplacedTail();
      this.#disconnect();
    }
    const pre = this.#written.postApplyChecksum;
    try {
      await this.#checkDatabaseFile();
      this.#connect();
      const read = await this.#withWriteLock(() => {
        this.#rescanWal();
        this.#beginRead();
        return Promise.resolve(true);
      }, 30_000);
      if (read === null) throw new Error("its write lock was not free for 30 s");
    } catch (e) {
      this.#disconnect();
      const msg = `database file ${this.dbPath} was replaced by one strata cannot open: ${
        (e as Error).message
      }`;
      if (msg !== this.problem) {
        log("error", "cannot capture the replaced database", { error: msg });
      }
      this.problem = msg;
      return false;
    }
    this.#gone = false;
    this.problem = null;
    this.#forceFull = null;
    this.#recoverFrom = null;
    this.#restartExpected = false;
    this.#lastStat = "";
    this.#rebuildPageChecksums();
    await saveIdentity(this.metaPath, this.#identity, this.#modes.file).catch((e) =>
      log("warn", "could not record the database file's identity", { db: this.dbPath, error: e })
    );
    if (this.#sum.value === pre) {
      log("info", "the database file was replaced by an identical one", { db: this.dbPath });
      return false;
    }
    const reason =
      `the database file was replaced while strata was running (file ${old} is now ${this.#identity})`;
    log("error", "database file replaced while replicating: capturing the new file in full", {
      db: this.dbPath,
      after: formatPosition(this.#written),
    });
    this.#newLineage(reason);
    await this.#writeFull(pre, reason, "warn");
    return true;
  }

  /**
   * Captures the commits the replaced file received since the last tick, but
   * only from a WAL that is its own: a WAL still at the database's path is
   * shared with the new file (SQLite finds it by name), and frames in it
   * cannot be told apart. Then they are left out, and the log says so.
   */
  async #captureReplacedTail(): Promise<void> {
    const ours = this.#walFile.identity();
    if (ours === null) return; // no WAL was captured from: nothing of the old file's can be in one
    if (fileIdentity(this.dbPath + "-wal") !== ours) {
      await this.#withWriteLock(() => this.#captureLocked(), 1000).catch((e) =>
        log("warn", "could not capture the replaced file's last commits", {
          db: this.dbPath,
          error: e,
        })
      );
      return;
    }
    const head = parseWalHeader(this.#walFile.readAt(0, WAL_HEADER_SIZE));
    const w = this.#wal;
    const moved = head === null || w.header === null || head.salt1 !== w.header.salt1 ||
      head.salt2 !== w.header.salt2 || this.#walFile.size() > w.offset;
    if (moved) {
      log(
        "error",
        "the replaced database shares its -wal with the new file at its path: WAL frames after the last capture are not captured (they cannot be told apart from the new file's); move a database's -wal and -shm away with it",
        { db: this.dbPath, after: formatPosition(this.#written) },
      );
    }
  }

  async #recoverFull(reason: string): Promise<boolean> {
    const pre = this.#sum.value;
    this.#rescanWal();
    this.#rebuildPageChecksums();
    this.#restartExpected = false;
    await this.#writeFull(pre, reason);
    return true;
  }

  /** Runs `fn` holding the write lock; retries until `waitMs` if another writer holds it. */
  async #withWriteLock<T>(fn: () => Promise<T>, waitMs: number): Promise<T | null> {
    const deadline = Date.now() + waitMs;
    // a busy app frees the lock only between its transactions, for microseconds: try often
    while (!tryBeginWrite(this.#w)) {
      if (Date.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, 2));
    }
    try {
      return await fn();
    } finally {
      endTransaction(this.#w);
    }
  }

  #walPages(): number {
    return Math.max(
      0,
      (this.#wal.offset - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + this.#pageSize),
    );
  }

  async #maybeCheckpoint(): Promise<void> {
    const due = this.#checkpointDue();
    if (due !== null) await this.checkpoint(due);
  }

  /** The checkpoint this tick should run, if any. */
  #checkpointDue(): "PASSIVE" | "TRUNCATE" | null {
    if (this.problem !== null) return null; // the app checkpoints meanwhile; we recover with a full copy
    const pages = this.#walPages();
    if (this.#opts.truncatePageN > 0 && pages >= this.#opts.truncatePageN) return "TRUNCATE";
    // the last checkpoint took every frame and nothing came since: the WAL restarts with the
    // app's next commit, and checkpointing again would only take the write lock every tick
    if (this.#restartExpected && !this.#dataSinceCheckpoint) return null;
    const now = this.#opts.clock();
    if (
      pages >= this.#opts.minCheckpointPageCount ||
      (this.#dataSinceCheckpoint && now - this.#lastCheckpoint >= this.#opts.checkpointIntervalMs)
    ) return "PASSIVE";
    return null;
  }

  /**
   * The idle tick's whole work when the WAL index did not change since the
   * last capture, done synchronously: true when the database file is still
   * the one captured and nothing else is due (no problem to retry, no full
   * copy, no checkpoint); false when capture() must run.
   */
  idleCheck(): boolean {
    if (this.#closed || this.#finished || !this.#connected || this.#gone) return false;
    if (this.problem !== null || this.#forceFull) return false;
    return fileIdentity(this.dbPath) === this.#identity && this.#checkpointDue() === null;
  }

  /**
   * Checkpoints so the WAL can restart, holding the app's write lock only
   * for moments (see #passiveCheckpoint); TRUNCATE is the emergency brake.
   */
  async checkpoint(mode: "PASSIVE" | "TRUNCATE"): Promise<boolean> {
    const st = this.stats;
    const t0 = performance.now();
    st.checkpoints[mode] = (st.checkpoints[mode] ?? 0) + 1;
    try {
      return await this.#checkpoint(mode);
    } catch (e) {
      st.checkpointErrors[mode] = (st.checkpointErrors[mode] ?? 0) + 1;
      throw e;
    } finally {
      st.checkpointSeconds[mode] = (st.checkpointSeconds[mode] ?? 0) +
        (performance.now() - t0) / 1000;
    }
  }

  async #checkpoint(mode: "PASSIVE" | "TRUNCATE"): Promise<boolean> {
    return await this.#mutex.run(async () => {
      if (this.#readReleased || !this.#connected || this.#finished) return false;
      // never checkpoint a replaced file: its -wal and -shm may be the new file's now
      if (fileIdentity(this.dbPath) !== this.#identity) return false;
      if (mode === "TRUNCATE") return await this.#truncateCheckpoint();
      const done = await this.#passiveCheckpoint();
      if (done) {
        this.#lastCheckpoint = this.#opts.clock();
        this.#dataSinceCheckpoint = false;
      }
      return done;
    });
  }

  /**
   * A PASSIVE checkpoint that holds the app's write lock only for moments,
   * never for copying pages or an fsync, and never for capturing more than
   * LOCKED_TAIL_FRAMES frames:
   *
   * 1. write lock: capture the tail, move our read transaction to the WAL's
   *    end (everything captured);
   * 2. no lock: checkpoint from the other connection; it copies every frame
   *    up to our read mark while the app commits on (no restart can happen
   *    while our read transaction holds that mark);
   * 3. write lock: capture what the app committed during step 2, release
   *    our read transaction for a checkpoint of those frames and take it
   *    again (on the database file alone when every frame is copied), so the
   *    app's next commit restarts the WAL. No commit slips between the
   *    capture and the checkpoint: both happen under the write lock.
   */
  async #passiveCheckpoint(): Promise<boolean> {
    const moved = await this.#withCapturedWriteLock(() => {
      endTransaction(this.#r);
      this.#beginRead();
    });
    if (moved === null) return false;
    const bulk = checkpoint(this.#w, "PASSIVE");
    const done = await this.#withCapturedWriteLock(() => {
      const r = this.#checkpointOutsideReadLock("PASSIVE");
      this.#restartExpected = !r.busy && r.log > 0 && r.checkpointed === r.log;
      log("debug", "checkpoint", { db: this.dbPath, mode: "PASSIVE", bulk, ...r });
    });
    return done !== null;
  }

  /**
   * Runs `fn` under the write lock right after capturing every committed
   * frame. A long tail is captured first without the lock (a few rounds at
   * most, while the app commits on), so the app waits only for a short one.
   */
  async #withCapturedWriteLock(fn: () => void): Promise<true | null> {
    for (let round = 0; round < 4 && this.#uncapturedFrames() > LOCKED_TAIL_FRAMES; round++) {
      await this.#captureLocked();
    }
    return await this.#withWriteLock(async () => {
      await this.#captureLocked();
      fn();
      return true as const;
    }, 50);
  }

  /** Frames the WAL index says are committed that are not captured yet (an estimate). */
  #uncapturedFrames(): number {
    const frames = walIndexFrameCount(this.#shmFile.readAt(0, WAL_INDEX_HEADER_SIZE)) ?? 0;
    return frames - this.#walPages();
  }

  /** Releases our read transaction just for the checkpoint, then takes it again. */
  #checkpointOutsideReadLock(mode: "PASSIVE" | "TRUNCATE"): CheckpointResult {
    endTransaction(this.#r);
    try {
      return checkpoint(this.#r, mode);
    } finally {
      this.#beginRead();
    }
  }

  /** Begins our read transaction at the captured position (under the write lock). */
  #beginRead(): void {
    beginRead(this.#r);
    this.#noteBackfill();
  }

  /**
   * When a checkpoint has copied every captured frame into the database
   * file, SQLite may let the app restart the WAL over them although our read
   * transaction is open (it reads from the database file alone): from then
   * on those pages are read from the database file (which no checkpoint
   * changes while that transaction lasts), and the restart is expected.
   */
  #noteBackfill(): void {
    const w = this.#wal;
    if (!w.header || w.offset === WAL_HEADER_SIZE) return;
    const frames = (w.offset - WAL_HEADER_SIZE) / (WAL_FRAME_HEADER_SIZE + this.#pageSize);
    const shm = this.#shmFile.readAt(0, WAL_INDEX_CKPT_SIZE);
    if (walIndexBackfilled(shm, w.header.salt1, w.header.salt2) !== frames) return;
    w.dbHolds = w.offset;
    this.#restartExpected = true;
  }

  /**
   * The emergency brake: TRUNCATE needs the write lock itself, so it runs
   * after ours is released; a commit that lands in between is detected by
   * comparing the database with our position afterwards (then a full copy).
   */
  async #truncateCheckpoint(): Promise<boolean> {
    await this.#withWriteLock(() => this.#captureLocked(), 50);
    const expected = this.#sum.value;
    const r = this.#checkpointOutsideReadLock("TRUNCATE");
    log("warn", "WAL passed truncate-page-n: ran a TRUNCATE checkpoint", { db: this.dbPath, ...r });
    this.#lastCheckpoint = this.#opts.clock();
    this.#dataSinceCheckpoint = false;
    if (r.busy) return false;
    this.#rescanWal();
    this.#rebuildPageChecksums();
    if (this.#sum.value !== expected) {
      this.#sum.set(expected);
      this.#forceFull = "a commit landed during the TRUNCATE checkpoint";
    }
    this.#restartExpected = true;
    return true;
  }

  /** Final capture (under the write lock, so nothing committed is left behind), then close. */
  /**
   * The final capture (under the write lock, so nothing committed is left
   * behind); nothing is captured or checkpointed after it, but the read
   * transaction stays, so the captured state can still be snapshotted (a
   * replica re-seeded in the final sync) until close().
   */
  async finish(): Promise<void> {
    if (this.#finished || this.#closed) return;
    await this.#mutex.run(async () => {
      if (this.#finished || this.#closed) return;
      try {
        // a file replaced since the last tick is captured before stopping
        const atPath = fileIdentity(this.dbPath);
        if (atPath !== null && atPath !== this.#identity) await this.#followFileAtPath(atPath);
        if (this.#connected) await this.#withWriteLock(() => this.#captureLocked(), 2000);
      } finally {
        this.#finished = true;
      }
    });
  }

  /** finish(), then closes the connections and files and unlocks the meta directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.finish();
    } finally {
      await this.#mutex.run(() => {
        this.#closed = true;
        this.#disconnect();
        this.#lock?.release();
        return Promise.resolve();
      });
    }
  }

  /**
   * Streams a snapshot of the captured state (min TXID 1, max = the current
   * TXID) into `sink`-backed encoder; captures are paused meanwhile.
   */
  async writeSnapshot(path: string): Promise<{ maxTXID: bigint; postApplyChecksum: bigint }> {
    return await this.#mutex.run(async () => {
      if (!this.#connected || this.#closed) {
        // its files are no longer the captured state: never read pages from them
        throw new Error(this.problem ?? `database ${this.dbPath} is no longer open for snapshots`);
      }
      const header = makeHeader({
        pageSize: this.#pageSize,
        commit: this.#commit,
        minTXID: 1n,
        maxTXID: this.#txid,
        timestamp: BigInt(this.#stamp(false)),
      });
      const expected = this.#sum.value;
      await writeFileAtomic(path, async (file) => {
        const enc = new LtxEncoder(writerSink(file), header, { file: path });
        await this.#writeAllPages(enc);
        await enc.finish(expected);
      }, this.#modes.file);
      return { maxTXID: this.#txid, postApplyChecksum: expected };
    });
  }
}

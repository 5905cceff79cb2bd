/**
 * Uploads the monitor's L0 files to one replica every sync interval. A replica
 * that does not continue from the local files (fresh, or behind a pruned
 * local history) first gets a snapshot (level 9).
 */

import { basename, join } from "node:path";
import {
  formatChecksum,
  formatLtxFileName,
  formatPosition,
  formatTXID,
  type Position,
} from "../ltx/mod.ts";
import type { LocalFile, Monitor } from "../capture/mod.ts";
import {
  leaseStoreFor,
  type ReplicaClient,
  type ReplicaFile,
  replicaFileLabel,
  ReplicaFileNotFoundError,
  SNAPSHOT_LEVEL,
} from "../storage/mod.ts";
import { restoreTarget } from "../restore/verified_restore.ts";
import { AgeDecryptError, storedFilesOf } from "../storage/age_client.ts";
import { planRestore, RestorePlanError } from "../restore/plan.ts";
import { ReplicaFileCheckError } from "../restore/apply.ts";
import { log } from "../log.ts";
import { ProgressCounter, startProgress } from "../progress.ts";
import { ReplicaIndex } from "./replica_index.ts";
import { mergeLocalFiles, uploadOfMerge } from "./local_merge.ts";
import { chainAfter, splitAtSnapshots } from "./local_chain.ts";
import { RetryBackoff } from "./retry_backoff.ts";
import { Lease, type LeaseOptions } from "./lease.ts";
import {
  continuityProblem,
  newestFile,
  readLocalEnds,
  readReplicaPosition,
  readReplicaPost,
} from "./positions.ts";

export interface ReplicatorOptions {
  syncIntervalMs: number;
  /**
   * On divergence, start a new lineage (a full copy past the replica's newest
   * TXID and a fresh snapshot) instead of stopping uploads.
   */
  newLineage?: boolean;
  /** Lease settings; `false` turns the lease off (tests of the machinery only). */
  lease?: LeaseOptions | false;
}

/**
 * The replica does not continue the local history (its newest TXID and
 * checksum are not a point of the local history). Uploads to that replica
 * stop; nothing in it is deleted.
 */
export interface Divergence {
  /** The local position when it was detected. */
  readonly local: Position;
  /** The replica's newest TXID and the checksum after it. */
  readonly replica: Position;
  readonly detectedAt: Date;
  readonly reason: string;
}

export class Replicator {
  readonly client: ReplicaClient;
  readonly monitor: Monitor;
  readonly #opts: ReplicatorOptions;
  /** The replica's newest TXID and checksum after it, or null until listed. */
  #replicaPos: Position | null = null;
  #divergence: Divergence | null = null;
  #syncing: Promise<void> | null = null;
  #again: Promise<void> | null = null;
  /** Monitor lineages already followed by a snapshot (see Monitor.lineage). */
  #lineagesSeen = 0;
  #lastSyncStart = -Infinity;
  #requested: ReturnType<typeof setTimeout> | null = null;
  #snapshotReason: string | null = null;
  /** Set when the replica does not hold a restorable chain: the next sync re-seeds it. */
  #reseed: string | null = null;
  /** Files were uploaded since the last chain check (an idle replica is not checked). */
  #uploadedSinceCheck = false;
  /** The listing is stale (files vanished): the next sync lists again. */
  #relist = false;
  lastError: Error | null = null;
  /** When the last sync that left nothing pending for this replica finished (metrics, status). */
  lastSyncAt: Date | null = null;
  /** The replica's TXID as last known, kept across failed syncs (for the lag). */
  #knownTXID = 0n;
  /** Failed syncs in a row: the next scheduled one waits, repeats are logged once a minute. */
  readonly #backoff: RetryBackoff;

  /** The replica's files, listed once and kept current by this (its only) writer. */
  readonly index: ReplicaIndex;
  /** One writer per replica (null for backends without conditional writes yet). */
  readonly lease: Lease | null;

  constructor(monitor: Monitor, client: ReplicaClient, opts: ReplicatorOptions) {
    this.monitor = monitor;
    this.client = client;
    this.#opts = opts;
    this.#backoff = new RetryBackoff(opts.syncIntervalMs);
    this.index = new ReplicaIndex(client);
    const store = opts.lease === false ? null : leaseStoreFor(client);
    this.lease = store ? new Lease(store, opts.lease || {}) : null;
  }

  /** True when this process may write to the replica: not diverged, lease held (if any). */
  get writable(): boolean {
    return this.#divergence === null && (this.lease === null || this.lease.held);
  }

  get syncIntervalMs(): number {
    return this.#opts.syncIntervalMs;
  }

  get replicaTXID(): bigint | null {
    return this.#replicaPos?.txid ?? null;
  }

  /** The replica's newest TXID as last seen, kept while it is unreachable. */
  get lastKnownTXID(): bigint {
    return this.#replicaPos?.txid ?? this.#knownTXID;
  }

  /** The replica's position (TXID, checksum after it), or null until listed. */
  get replicaPosition(): Position | null {
    return this.#replicaPos;
  }

  /** Why the replica cannot be restored now (it is re-seeded at the next sync), or null. */
  get notRestorable(): string | null {
    return this.#reseed;
  }

  /** Null, or why uploads to this replica stopped (see Divergence). */
  get divergence(): Divergence | null {
    return this.#divergence;
  }

  /** A replica state's checksum computed by restoring it: by TXID, for the last one asked. */
  #computed: Position | null = null;

  /**
   * The replica's position with a checksum to compare: a newest file without
   * one (zero: Litestream v0.5 writes no checksums) gets its state's checksum
   * computed by restoring the replica into the meta directory once, so that
   * whether the database continues it is decided by content, and strata's
   * files continue the same chain (their pre-apply checksum is that state's).
   */
  async #withChecksum(pos: Position): Promise<Position> {
    if (pos.txid === 0n || pos.postApplyChecksum !== 0n) return pos;
    if (this.#computed?.txid === pos.txid) return this.#computed;
    const tmp = join(this.monitor.metaPath, `replica-state-${crypto.randomUUID().slice(0, 8)}.db`);
    try {
      let r;
      try {
        // a replica written before age was switched on is read as stored
        const client = this.#plaintextPos !== null
          ? storedFilesOf(this.client) ?? this.client
          : this.client;
        r = await restoreTarget(client, { txid: pos.txid }, tmp, {
          integrityCheck: "none",
          files: this.index.all(),
        });
      } catch (e) {
        if (!(e instanceof RestorePlanError || e instanceof ReplicaFileCheckError)) throw e;
        // the replica cannot be restored: nothing shows the database continues it, so it is
        // treated as another history (reported diverged; -new-lineage goes on past it)
        log(
          "error",
          "the replica's newest state cannot be restored to compare it with the database",
          {
            db: this.monitor.dbPath,
            replica: this.client.location,
            error: e,
          },
        );
        return pos;
      }
      this.#computed = { txid: pos.txid, postApplyChecksum: r.checksum };
      log(
        "info",
        "the replica's newest file carries no checksum (as Litestream writes them): computed its state's by restoring it",
        {
          db: this.monitor.dbPath,
          replica: this.client.location,
          position: formatPosition(this.#computed),
        },
      );
      return this.#computed;
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }

  /**
   * Set when age encryption was switched on over a replica that holds files
   * written without it (its position, read as stored): the next sync starts
   * a new lineage there, so no restore ever chains encrypted files onto
   * plaintext ones.
   */
  #plaintextPos: Position | null = null;

  async #readPosition(all: ReplicaFile[]): Promise<Position> {
    try {
      return await readReplicaPosition(this.client, all);
    } catch (e) {
      const stored = storedFilesOf(this.client);
      if (!(e instanceof AgeDecryptError && e.plaintext && stored)) throw e;
      this.#plaintextPos = await readReplicaPosition(stored, all);
      this.index.unencryptedThrough = this.#plaintextPos.txid;
      return this.#plaintextPos;
    }
  }

  async #loadReplicaPosition(): Promise<Position> {
    await this.index.load();
    const all = this.index.all();
    const broken = this.index.restoreProblem();
    if (broken !== null) this.#reseed ??= broken;
    const pos = await this.#withChecksum(await this.#readPosition(all));
    // A snapshot may be ahead of the levels' chain (strata stopped after an
    // extra snapshot, before L0 caught up with it): go on from the chain's
    // end when the local files continue it, so L0 keeps every TXID.
    const chain = newestFile(all.filter((f) => f.level < SNAPSHOT_LEVEL));
    if (!chain || chain.maxTXID >= pos.txid) return pos;
    const local = await this.monitor.localFiles();
    if (!local.some((f) => f.minTXID === chain.maxTXID + 1n)) return pos;
    const chainPos = {
      txid: chain.maxTXID,
      postApplyChecksum: await readReplicaPost(this.client, chain),
    };
    const problem = await continuityProblem(chainPos, this.monitor.position, local);
    return problem === null ? chainPos : pos;
  }

  /**
   * Asks for `run` (which syncs) as soon as the sync interval since the last
   * sync allows: new files go out at once on a quiet database, and at most
   * once per interval on a busy one.
   */
  requestSync(run: () => void): void {
    if (this.#requested !== null) return;
    const due = Math.max(this.#lastSyncStart + this.#opts.syncIntervalMs, this.#backoff.retryAt);
    const wait = Math.max(0, due - Date.now());
    this.#requested = setTimeout(() => {
      this.#requested = null;
      run();
    }, wait);
  }

  /** True when a sync has nothing to do: no error to retry, replica at the local position. */
  get idle(): boolean {
    if (this.#divergence) return true; // nothing to retry until restarted
    return this.lastError === null && this.#replicaPos !== null &&
      this.#replicaPos.txid >= this.monitor.position.txid;
  }

  cancelRequested(): void {
    if (this.#requested !== null) clearTimeout(this.#requested);
    this.#requested = null;
  }

  /**
   * Uploads everything pending. Calls while a run is in flight share one
   * more run after it, so a caller always sees files that existed when it
   * called (the final sync at stop relies on it).
   */
  sync(): Promise<void> {
    if (this.#syncing) {
      // the run in flight may have listed the local files before the newest
      // one (the final capture at stop, say): one more run follows it, shared
      this.#again ??= this.#syncing.then(() => {
        this.#again = null;
        return this.sync();
      });
      return this.#again;
    }
    this.#syncing = this.#sync().finally(() => (this.#syncing = null));
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    this.#lastSyncStart = Date.now();
    if (this.#divergence) return;
    try {
      if (this.lease && !(await this.lease.ensure())) throw new Error(this.lease.problem!);
      if (this.#relist) {
        this.#relist = false;
        this.#replicaPos = null;
        this.index.invalidate();
      }
      if (this.#replicaPos === null) this.#replicaPos = await this.#loadReplicaPosition();
      if (this.#plaintextPos !== null) {
        // the plaintext history must be this database's before anything continues it
        const problem = await continuityProblem(
          this.#replicaPos,
          this.monitor.position,
          await this.monitor.localFiles(),
        );
        if (problem !== null && !(await this.#diverged(problem))) return;
        await this.#startEncryptedLineage(this.#plaintextPos);
      }
      const lineage = this.monitor.lineage;
      if (lineage.count > this.#lineagesSeen) {
        this.#lineagesSeen = lineage.count;
        if (this.#replicaPos.txid > 0n) this.#snapshotReason ??= `new lineage: ${lineage.reason}`;
      }
      const problem = await continuityProblem(
        this.#replicaPos,
        this.monitor.position,
        await this.monitor.localFiles(),
      );
      if (problem !== null && !(await this.#diverged(problem))) return;
      if (this.#reseed !== null) {
        // the replica continues this history but holds no restorable chain (its files
        // vanished, a bucket recreated): a snapshot of the local position makes it
        // restorable again (a replica of another history was refused just above)
        const reason = this.#reseed;
        log("error", "replica is not restorable: re-seeding it with a snapshot", {
          db: this.monitor.dbPath,
          replica: this.client.location,
          reason,
        });
        await this.#uploadSnapshot(`re-seed: ${reason}`);
        this.#reseed = null;
      }
      let pos = this.#replicaPos.txid;
      let chain = chainAfter(await this.monitor.localFiles(), pos);
      let unchained = await checksumBreak(this.#replicaPos, chain.files);
      if (chain.reaches < chain.newest || unchained !== null) {
        // the local files do not lead from the replica's TXID and checksum to
        // the local position (fresh replica, pruned history, a gap or damage in
        // the local files): a snapshot re-seeds the replica, whatever the local state
        const lost = pos === 0n && this.#knownTXID > 0n;
        const reason = lost
          ? `replica lost its files (it held TXID ${formatTXID(this.#knownTXID)})`
          : pos === 0n
          ? "empty replica"
          : chain.files.length === 0
          ? "replica does not continue the local files"
          : unchained ??
            `the local files do not chain from TXID ${formatTXID(chain.reaches)} to ${
              formatTXID(chain.newest)
            }`;
        if (lost) {
          // emptied while strata ran (noticed when a sync re-listed it after a failure)
          log("error", "replica lost its files: re-seeding it with a snapshot", {
            db: this.monitor.dbPath,
            replica: this.client.location,
            had: formatTXID(this.#knownTXID),
          });
        }
        if (unchained !== null) {
          log("error", "a local file does not continue the replica: re-seeding it", {
            db: this.monitor.dbPath,
            replica: this.client.location,
            reason,
          });
        }
        pos = await this.#uploadSnapshot(reason);
        chain = chainAfter(await this.monitor.localFiles(), pos);
        unchained = await checksumBreak(this.#replicaPos, chain.files);
        if (chain.reaches < chain.newest || unchained !== null) {
          throw new Error(
            unchained ??
              `the local files in ${this.monitor.ltxDir} do not chain from TXID ${
                formatTXID(chain.reaches)
              } to ${formatTXID(chain.newest)} even after a snapshot`,
          );
        }
      }
      const files = chain.files;
      // a full copy from TXID 1 (a fresh replica, a new lineage) is a snapshot: it goes to
      // level 9 on its own, never through the levels (one copy of the database, not one a level)
      const parts = splitAtSnapshots(files).flatMap((run) =>
        run[0].minTXID === 1n ? [[run[0]], run.slice(1)] : [run]
      );
      for (const run of parts.filter((p) => p.length > 0)) {
        await (run.length === 1 ? this.#upload(run[0]) : this.#uploadMerged(run));
        this.#uploadedSinceCheck = true;
        const last = run[run.length - 1];
        this.#replicaPos = {
          txid: last.maxTXID,
          postApplyChecksum: (await readLocalEnds(last.path)).post,
        };
      }
      if (this.#snapshotReason !== null) {
        const reason = this.#snapshotReason;
        this.#snapshotReason = null;
        // an extra full copy: L0 goes on from where it is (no TXID skipped there)
        await this.#writeSnapshot(reason);
      }
      if (this.lastError) {
        log("info", "sync recovered", { db: this.monitor.dbPath, replica: this.client.location });
      }
      this.lastError = null;
      this.#backoff.succeeded();
      this.#knownTXID = this.replicaTXID ?? this.#knownTXID;
      this.lastSyncAt = new Date();
    } catch (e) {
      this.#failed(e as Error);
    }
  }

  /** The encrypted lineage's local full copy is written (its upload may still be due). */
  #encryptedLineageStarted = false;

  /**
   * Encryption was switched on over a plaintext replica of this database: a
   * new lineage past its newest TXID, whose snapshot is the first encrypted
   * file. Points before it stay restorable without the age settings (files as
   * stored); the compactor never merges a plaintext file into an encrypted one.
   */
  async #startEncryptedLineage(plain: Position): Promise<void> {
    const reason = `age encryption switched on: the replica's files up to TXID ${
      formatTXID(plain.txid)
    } were written without it; a new encrypted lineage starts past them`;
    log("warn", "replica holds unencrypted files: starting a new encrypted lineage", {
      db: this.monitor.dbPath,
      replica: this.client.location,
      unencryptedThrough: formatTXID(plain.txid),
      hint:
        "points before it restore without the age settings (by URL); retention removes those files in time, or remove them yourself",
    });
    if (!this.#encryptedLineageStarted) {
      await this.monitor.startNewLineage(plain.txid, reason);
      this.#lineagesSeen = this.monitor.lineage.count; // this snapshot is the new lineage's
      this.#encryptedLineageStarted = true;
    }
    await this.#uploadSnapshot(reason); // a failed upload is retried, the lineage not restarted
    this.#plaintextPos = null;
  }

  /** A sync failed: logged (see RetryBackoff), listed again at the next attempt. */
  #failed(e: Error): void {
    this.lastError = e;
    this.#replicaPos = null; // re-list next time
    this.index.invalidate();
    const { waitMs, loud } = this.#backoff.failed(e.message);
    log(loud ? "error" : "debug", "sync failed", {
      db: this.monitor.dbPath,
      replica: this.client.location,
      failures: this.#backoff.failures,
      retryInMs: waitMs,
      behind: `${this.lastKnownTXID}..${this.monitor.position.txid}`,
      error: e,
    });
  }

  /**
   * The replica does not continue the local history. When the database is
   * exactly the replica's newest state (a lost meta directory, a replica
   * another tool wrote), its history simply continues (true). Otherwise stop
   * uploading to it (false), or with `newLineage` start a new lineage past
   * its newest TXID and upload a fresh snapshot there (true).
   */
  async #diverged(problem: string): Promise<boolean> {
    const replica = this.#replicaPos!;
    const same = `the database equals the replica's newest state (${
      formatPosition(replica)
    }): continuing its history`;
    // the app may have committed since start-up: then a local file still shows the
    // database was exactly in the replica's state (a full copy of now continues it)
    let passed = false;
    for (const f of await this.monitor.localFiles()) {
      const post = await readLocalEnds(f.path).then((e) => e.post, () => null);
      if (post === replica.postApplyChecksum) passed = true;
    }
    if (await this.monitor.continueFrom(replica, same, passed)) {
      // numbered past the replica (the app committed before the first sync): the full copy
      // does not start right after it, so a snapshot of it continues the replica
      if (this.monitor.position.txid !== replica.txid + 1n) await this.#uploadSnapshot(same);
      return true;
    }
    if (this.#opts.newLineage) {
      const reason = `new lineage after divergence: ${problem}`;
      await this.monitor.startNewLineage(replica.txid, reason);
      await this.#uploadSnapshot(reason); // the replica's position moves to it
      return true;
    }
    this.#divergence = {
      local: this.monitor.position,
      replica,
      detectedAt: new Date(),
      reason: problem,
    };
    log("error", "replica diverged from the local database: uploads to it stopped", {
      db: this.monitor.dbPath,
      replica: this.client.location,
      local: formatPosition(this.#divergence.local),
      replicaPosition: formatPosition(replica),
      reason: problem,
      hint:
        "nothing in the replica was changed; restart with -new-lineage to continue with a fresh snapshot, or use another replica path",
    });
    return false;
  }

  /**
   * Checks that the replica still holds the file its chain starts from (the
   * base a restore of the latest state reads first: one small ranged read,
   * only when files were uploaded since the last check). When it is gone
   * (the directory emptied, the bucket recreated), the replica is re-seeded
   * with a snapshot at the next sync; returns why, or null when all is well.
   */
  async checkChain(): Promise<string | null> {
    if (!this.#uploadedSinceCheck || !this.index.loaded || !this.writable) return null;
    this.#uploadedSinceCheck = false;
    const all = this.index.all();
    let base: ReplicaFile;
    try {
      base = planRestore(all, { txid: this.index.maxTXID() }, this.client.location).files[0];
    } catch (e) {
      return this.#lost((e as Error).message);
    }
    try {
      await readReplicaPost(this.client, base);
      return null;
    } catch (e) {
      if (!(e instanceof ReplicaFileNotFoundError)) return null; // unreachable: the sync says so
      return this.#lost(`${replicaFileLabel(this.client.location, base)} is gone`);
    }
  }

  #lost(reason: string): string {
    const why = `the replica no longer holds the chain it extends (${reason})`;
    log("error", "replica lost its files: re-seeding it with a snapshot at the next sync", {
      db: this.monitor.dbPath,
      replica: this.client.location,
      reason: why,
    });
    this.#reseed = why;
    this.#relist = true; // by the next sync (not here: one may be under way)
    return why;
  }

  /**
   * Replication lag: how long the oldest captured change this replica does
   * not have yet has been waiting (its local L0 file's creation time); 0 when
   * the replica has everything captured.
   */
  async lagMs(now = Date.now()): Promise<number> {
    const have = this.replicaTXID ?? this.#knownTXID;
    if (have >= this.monitor.position.txid) return 0;
    for (const f of await this.monitor.localFiles()) {
      if (f.maxTXID <= have) continue;
      try {
        return Math.max(0, now - (await createdAtOf(f.path)).getTime());
      } catch { /* uploaded and pruned meanwhile: the next one */ }
    }
    return 0;
  }

  async #upload(f: LocalFile): Promise<void> {
    const createdAt = await createdAtOf(f.path);
    const file = await Deno.open(f.path);
    const level = f.minTXID === 1n ? SNAPSHOT_LEVEL : 0;
    const write = (s: ReadableStream<Uint8Array>) =>
      this.client.writeFile(level, f.minTXID, f.maxTXID, s, createdAt);
    // a file from TXID 1 is a full copy of the database: show its progress as a snapshot's
    this.index.add(
      f.minTXID === 1n ? await this.#showingProgress(file, write) : await write(file.readable),
    );
    log("debug", "uploaded", {
      db: this.monitor.dbPath,
      file: formatLtxFileName(f.minTXID, f.maxTXID),
    });
  }

  /** Every pending local file as one replica file: one request per sync however busy the app. */
  async #uploadMerged(batch: LocalFile[]): Promise<void> {
    const first = batch[0];
    const last = batch[batch.length - 1];
    const name = formatLtxFileName(first.minTXID, last.maxTXID);
    const merge = await mergeLocalFiles(batch.map((f) => f.path), name);
    try {
      const createdAt = await createdAtOf(last.path);
      const uploaded = await uploadOfMerge(
        this.client.writeFile(0, first.minTXID, last.maxTXID, merge.stream, createdAt),
        merge.result,
      );
      this.index.add(uploaded);
      log("debug", "uploaded", { db: this.monitor.dbPath, file: name, merged: batch.length });
    } finally {
      await merge.close();
    }
  }

  /**
   * Uploads a snapshot (level 9) of the captured state after the pending L0
   * files, in the same run as a sync so the two never interleave.
   */
  async snapshot(reason: string): Promise<void> {
    this.#snapshotReason = reason;
    await this.sync();
    if (this.lastError) throw this.lastError;
  }

  async #uploadSnapshot(reason: string): Promise<bigint> {
    const pos = await this.#writeSnapshot(reason);
    this.#replicaPos = pos;
    this.#reseed = null; // any snapshot makes the replica restorable
    return pos.txid;
  }

  async #writeSnapshot(reason: string): Promise<Position> {
    const tmp = join(this.monitor.metaPath, `snapshot-${crypto.randomUUID().slice(0, 8)}.ltx`);
    try {
      const snap = await this.monitor.writeSnapshot(tmp);
      log("info", "uploading snapshot", {
        db: this.monitor.dbPath,
        replica: this.client.location,
        txid: snap.maxTXID,
        reason,
      });
      const file = await Deno.open(tmp);
      const createdAt = await createdAtOf(tmp);
      this.index.add(
        await this.#showingProgress(
          file,
          (s) => this.client.writeFile(SNAPSHOT_LEVEL, 1n, snap.maxTXID, s, createdAt),
        ),
      );
      return { txid: snap.maxTXID, postApplyChecksum: snap.postApplyChecksum };
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }

  /** Uploads a full copy of the database (`file`) with `write`, showing its progress. */
  async #showingProgress<T>(
    file: Deno.FsFile,
    write: (s: ReadableStream<Uint8Array>) => Promise<T>,
  ): Promise<T> {
    const shown = startProgress(`upload snapshot ${basename(this.monitor.dbPath)}`);
    const counter = new ProgressCounter((await file.stat()).size, shown.report);
    try {
      const r = await write(counter.wrap(file.readable));
      shown.finish(true);
      return r;
    } catch (e) {
      shown.finish(false);
      throw e;
    }
  }
}

/**
 * Why the first of `files` (uploaded next) does not continue the replica at
 * `replica`, or null: its pre-apply checksum must be the replica's post-apply
 * checksum, so the replica's history chains (a full copy from TXID 1 starts
 * a new one). Later files are checked against each other by the merge.
 */
async function checksumBreak(replica: Position, files: LocalFile[]): Promise<string | null> {
  const first = files[0];
  if (!first || first.minTXID === 1n || replica.txid === 0n) return null;
  const { header } = await readLocalEnds(first.path);
  if (header.preApplyChecksum === replica.postApplyChecksum) return null;
  return `local file ${first.path} starts from checksum ${
    formatChecksum(header.preApplyChecksum)
  }, the replica ends at ${formatPosition(replica)}`;
}

/** The creation time a local LTX file's header records. */
async function createdAtOf(path: string): Promise<Date> {
  return new Date(Number((await readLocalEnds(path)).header.timestamp));
}

/**
 * Uploads the monitor's L0 files to one replica every sync interval. A replica
 * that does not continue from the local files (fresh, or behind a pruned
 * local history) first gets a snapshot (level 9).
 */

import { join } from "node:path";
import { decodeHeader, formatLtxFileName, HEADER_SIZE, mergeLtxStream } from "../ltx/mod.ts";
import type { LocalFile, Monitor } from "../capture/mod.ts";
import { type ReplicaClient, SNAPSHOT_LEVEL } from "../storage/mod.ts";
import { log } from "../log.ts";
import { ReplicaIndex } from "./replica_index.ts";

export interface ReplicatorOptions {
  syncIntervalMs: number;
}

/** Most local files merged into one upload (each is an open file during the merge). */
const MAX_FILES_PER_UPLOAD = 64;

export class Replicator {
  readonly client: ReplicaClient;
  readonly monitor: Monitor;
  readonly #opts: ReplicatorOptions;
  /** Max TXID in the replica, or null until listed. */
  #replicaTXID: bigint | null = null;
  #syncing: Promise<void> | null = null;
  #lastSyncStart = -Infinity;
  #requested: ReturnType<typeof setTimeout> | null = null;
  #snapshotReason: string | null = null;
  lastError: Error | null = null;

  /** The replica's files, listed once and kept current by this (its only) writer. */
  readonly index: ReplicaIndex;

  constructor(monitor: Monitor, client: ReplicaClient, opts: ReplicatorOptions) {
    this.monitor = monitor;
    this.client = client;
    this.#opts = opts;
    this.index = new ReplicaIndex(client);
  }

  get syncIntervalMs(): number {
    return this.#opts.syncIntervalMs;
  }

  get replicaTXID(): bigint | null {
    return this.#replicaTXID;
  }

  async #loadReplicaPosition(): Promise<bigint> {
    await this.index.load();
    return this.index.maxTXID();
  }

  /**
   * Asks for `run` (which syncs) as soon as the sync interval since the last
   * sync allows: new files go out at once on a quiet database, and at most
   * once per interval on a busy one.
   */
  requestSync(run: () => void): void {
    if (this.#requested !== null) return;
    const wait = Math.max(0, this.#lastSyncStart + this.#opts.syncIntervalMs - Date.now());
    this.#requested = setTimeout(() => {
      this.#requested = null;
      run();
    }, wait);
  }

  /** True when a sync has nothing to do: no error to retry, replica at the local position. */
  get idle(): boolean {
    return this.lastError === null && this.#replicaTXID !== null &&
      this.#replicaTXID >= this.monitor.position.txid;
  }

  cancelRequested(): void {
    if (this.#requested !== null) clearTimeout(this.#requested);
    this.#requested = null;
  }

  /** Uploads everything pending; concurrent calls share one run. */
  sync(): Promise<void> {
    if (!this.#syncing) {
      this.#syncing = this.#sync().finally(() => (this.#syncing = null));
    }
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    this.#lastSyncStart = Date.now();
    try {
      if (this.#replicaTXID === null) this.#replicaTXID = await this.#loadReplicaPosition();
      let pos = this.#replicaTXID;
      let files = (await this.monitor.localFiles()).filter((f) => f.maxTXID > pos);
      if (files.length > 0 && files[0].minTXID !== pos + 1n && files[0].minTXID !== 1n) {
        pos = await this.#uploadSnapshot(
          pos === 0n ? "empty replica" : "replica does not continue the local files",
        );
        files = (await this.monitor.localFiles()).filter((f) => f.maxTXID > pos);
      }
      for (const f of files) {
        if (f.minTXID !== pos + 1n && f.minTXID !== 1n) {
          throw new Error(`local file ${f.path} does not continue replica TXID ${pos}`);
        }
        pos = f.maxTXID;
      }
      for (let i = 0; i < files.length; i += MAX_FILES_PER_UPLOAD) {
        const batch = files.slice(i, i + MAX_FILES_PER_UPLOAD);
        await (batch.length === 1 ? this.#upload(batch[0]) : this.#uploadMerged(batch));
        this.#replicaTXID = batch[batch.length - 1].maxTXID;
      }
      if (this.#snapshotReason !== null) {
        const reason = this.#snapshotReason;
        this.#snapshotReason = null;
        this.#replicaTXID = await this.#uploadSnapshot(reason);
      }
      this.lastError = null;
    } catch (e) {
      this.lastError = e as Error;
      this.#replicaTXID = null; // re-list next time
      this.index.invalidate();
      log("error", "sync failed", {
        db: this.monitor.dbPath,
        replica: this.client.location,
        error: e,
      });
    }
  }

  async #upload(f: LocalFile): Promise<void> {
    const createdAt = await createdAtOf(f.path);
    const file = await Deno.open(f.path);
    this.index.add(await this.client.writeFile(0, f.minTXID, f.maxTXID, file.readable, createdAt));
    log("debug", "uploaded", {
      db: this.monitor.dbPath,
      file: formatLtxFileName(f.minTXID, f.maxTXID),
    });
  }

  /** Several local files as one replica file: one request per sync however busy the app. */
  async #uploadMerged(batch: LocalFile[]): Promise<void> {
    const opened: Deno.FsFile[] = [];
    try {
      for (const f of batch) opened.push(await Deno.open(f.path));
      const first = batch[0];
      const last = batch[batch.length - 1];
      const { stream, result } = mergeLtxStream(
        batch.map((f, i) => ({ name: f.path, source: opened[i].readable })),
        { file: formatLtxFileName(first.minTXID, last.maxTXID) },
      );
      const createdAt = await createdAtOf(last.path);
      const [uploaded] = await Promise.all([
        this.client.writeFile(0, first.minTXID, last.maxTXID, stream, createdAt),
        result,
      ]);
      this.index.add(uploaded);
      log("debug", "uploaded", {
        db: this.monitor.dbPath,
        file: formatLtxFileName(first.minTXID, last.maxTXID),
        merged: batch.length,
      });
    } finally {
      for (const f of opened) {
        try {
          f.close();
        } catch { /* closed by its stream */ }
      }
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
      this.index.add(
        await this.client.writeFile(
          SNAPSHOT_LEVEL,
          1n,
          snap.maxTXID,
          file.readable,
          await createdAtOf(tmp),
        ),
      );
      return snap.maxTXID;
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }
}

/** The creation time a local LTX file's header records. */
async function createdAtOf(path: string): Promise<Date> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(HEADER_SIZE);
    let got = 0;
    while (got < HEADER_SIZE) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new Date(Number(decodeHeader(head.subarray(0, got), path).timestamp));
  } finally {
    file.close();
  }
}

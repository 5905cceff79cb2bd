/**
 * Uploads the monitor's L0 files to one replica every sync interval. A replica
 * that does not continue from the local files (fresh, or behind a pruned
 * local history) first gets a snapshot (level 9).
 */

import { join } from "node:path";
import { decodeHeader, formatLtxFileName, HEADER_SIZE } from "../ltx/mod.ts";
import type { LocalFile, Monitor } from "../capture/mod.ts";
import { type ReplicaClient, SNAPSHOT_LEVEL } from "../storage/mod.ts";
import { log } from "../log.ts";

export interface ReplicatorOptions {
  syncIntervalMs: number;
}

export class Replicator {
  readonly client: ReplicaClient;
  readonly monitor: Monitor;
  readonly #opts: ReplicatorOptions;
  /** Max TXID in the replica, or null until listed. */
  #replicaTXID: bigint | null = null;
  #syncing: Promise<void> | null = null;
  lastError: Error | null = null;

  constructor(monitor: Monitor, client: ReplicaClient, opts: ReplicatorOptions) {
    this.monitor = monitor;
    this.client = client;
    this.#opts = opts;
  }

  get syncIntervalMs(): number {
    return this.#opts.syncIntervalMs;
  }

  get replicaTXID(): bigint | null {
    return this.#replicaTXID;
  }

  async #loadReplicaPosition(): Promise<bigint> {
    let max = 0n;
    for (const level of [0, SNAPSHOT_LEVEL]) {
      for (const f of await this.client.listFiles(level)) if (f.maxTXID > max) max = f.maxTXID;
    }
    return max;
  }

  /** Uploads everything pending; concurrent calls share one run. */
  sync(): Promise<void> {
    if (!this.#syncing) {
      this.#syncing = this.#sync().finally(() => (this.#syncing = null));
    }
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    try {
      if (this.#replicaTXID === null) this.#replicaTXID = await this.#loadReplicaPosition();
      let pos = this.#replicaTXID;
      let files = (await this.monitor.localFiles()).filter((f) => f.maxTXID > pos);
      if (files.length === 0) return;
      if (files[0].minTXID !== pos + 1n && files[0].minTXID !== 1n) {
        pos = await this.#uploadSnapshot(pos);
        files = (await this.monitor.localFiles()).filter((f) => f.maxTXID > pos);
      }
      for (const f of files) {
        if (f.minTXID !== pos + 1n && f.minTXID !== 1n) {
          throw new Error(`local file ${f.path} does not continue replica TXID ${pos}`);
        }
        await this.#upload(f);
        pos = f.maxTXID;
        this.#replicaTXID = pos;
      }
      this.lastError = null;
    } catch (e) {
      this.lastError = e as Error;
      this.#replicaTXID = null; // re-list next time
      log("error", "sync failed", {
        db: this.monitor.dbPath,
        replica: this.client.location,
        error: e,
      });
    }
  }

  async #upload(f: LocalFile): Promise<void> {
    const file = await Deno.open(f.path);
    const head = new Uint8Array(HEADER_SIZE);
    await file.read(head);
    await file.seek(0, Deno.SeekMode.Start);
    const header = decodeHeader(head, f.path);
    const createdAt = new Date(Number(header.timestamp));
    await this.client.writeFile(0, f.minTXID, f.maxTXID, file.readable, createdAt);
    log("debug", "uploaded", {
      db: this.monitor.dbPath,
      file: formatLtxFileName(f.minTXID, f.maxTXID),
    });
  }

  async #uploadSnapshot(replicaTXID: bigint): Promise<bigint> {
    const tmp = join(this.monitor.metaPath, `snapshot-${crypto.randomUUID().slice(0, 8)}.ltx`);
    try {
      const snap = await this.monitor.writeSnapshot(tmp);
      log("info", "uploading snapshot", {
        db: this.monitor.dbPath,
        replica: this.client.location,
        txid: snap.maxTXID,
        reason: replicaTXID === 0n ? "empty replica" : "replica does not continue the local files",
      });
      const file = await Deno.open(tmp);
      await this.client.writeFile(SNAPSHOT_LEVEL, 1n, snap.maxTXID, file.readable, new Date());
      return snap.maxTXID;
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }
}

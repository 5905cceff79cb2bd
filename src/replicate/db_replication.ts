/**
 * One database's replication: the monitor ticking at the monitor interval,
 * each replica syncing at its sync interval, local pruning once every
 * replica has a file, and a final capture + sync on stop.
 */

import { Monitor, type MonitorOptions } from "../capture/mod.ts";
import type { ReplicaClient } from "../storage/mod.ts";
import { log } from "../log.ts";
import { Replicator } from "./replicator.ts";

/** How often a busy WAL is checked against the checkpoint threshold (a stat when idle). */
const PRESSURE_CHECK_MS = 5;

export interface DbReplicationOptions extends MonitorOptions {
  monitorIntervalMs: number;
  replicas: { client: ReplicaClient; syncIntervalMs: number }[];
}

export class DbReplication {
  readonly monitor: Monitor;
  readonly replicators: Replicator[];
  readonly #monitorIntervalMs: number;
  #timers: ReturnType<typeof setInterval>[] = [];
  #ticking: Promise<unknown> | null = null;
  #stopped = false;

  constructor(opts: DbReplicationOptions) {
    this.monitor = new Monitor(opts);
    this.#monitorIntervalMs = opts.monitorIntervalMs;
    this.replicators = opts.replicas.map((r) =>
      new Replicator(this.monitor, r.client, { syncIntervalMs: r.syncIntervalMs })
    );
  }

  async start(): Promise<void> {
    await this.monitor.open();
    log("info", "replicating", {
      db: this.monitor.dbPath,
      position: this.monitor.position.txid,
      replicas: this.replicators.map((r) => `${r.client.type}:${r.client.location}`).join(","),
    });
    await this.syncAll();
    this.#timers.push(setInterval(() => this.#tick(), this.#monitorIntervalMs));
    this.#timers.push(setInterval(() => {
      if (!this.#ticking && this.monitor.underPressure()) this.#tick();
    }, PRESSURE_CHECK_MS));
    for (const r of this.replicators) {
      // a safety net for retries; new files ask for a sync as soon as they exist
      this.#timers.push(setInterval(() => {
        if (!r.idle) this.#sync(r);
      }, r.syncIntervalMs));
    }
  }

  #sync(r: Replicator): void {
    if (!this.#stopped) r.sync().then(() => this.#prune());
  }

  #tick(): void {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = this.monitor.capture()
      .then((wrote) => {
        if (wrote) { for (const r of this.replicators) r.requestSync(() => this.#sync(r)); }
      })
      .catch((e) => log("error", "capture failed", { db: this.monitor.dbPath, error: e }))
      .finally(() => (this.#ticking = null));
  }

  /** Captures what is committed now and uploads it to every replica. */
  async syncAll(): Promise<void> {
    await this.monitor.capture();
    await Promise.all(this.replicators.map((r) => r.sync()));
    await this.#prune();
  }

  /** Deletes local L0 files every replica has, keeping the newest local file. */
  async #prune(): Promise<void> {
    const positions = this.replicators.map((r) => r.replicaTXID);
    if (positions.some((p) => p === null)) return;
    const min = positions.reduce((a, b) => (a! < b! ? a : b))!;
    const files = await this.monitor.localFiles();
    for (const f of files.slice(0, -1)) {
      if (f.maxTXID <= min) await Deno.remove(f.path).catch(() => {});
    }
  }

  /** Stops timers, captures the last committed frames and syncs them before closing. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    for (const r of this.replicators) r.cancelRequested();
    await this.#ticking;
    try {
      await this.monitor.close();
      await Promise.all(this.replicators.map((r) => r.sync()));
    } catch (e) {
      log("error", "final sync failed", { db: this.monitor.dbPath, error: e });
      throw e;
    }
    log("info", "stopped", { db: this.monitor.dbPath, position: this.monitor.position.txid });
  }
}

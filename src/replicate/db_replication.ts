/**
 * One database's replication: the monitor ticking at the monitor interval
 * (and at once when the WAL needs a checkpoint), each replica syncing as soon
 * as a new file exists but at most once per sync interval, compaction levels
 * and snapshots at wall-clock multiples of their intervals, retention, local
 * pruning once every replica has compacted a file into L1, and a final
 * capture + sync on stop.
 */

import { join } from "node:path";
import { type LocalFile, Monitor, type MonitorOptions } from "../capture/mod.ts";
import { formatLtxFileName, formatTXID } from "../ltx/mod.ts";
import { mergeIntoFile } from "./local_merge.ts";
import { type ReplicaClient, replicaName } from "../storage/mod.ts";
import { log } from "../log.ts";
import { Replicator } from "./replicator.ts";
import { LeaseHeldError } from "./lease.ts";
import { redundantFiles } from "./local_chain.ts";
import { withinMs } from "./time_limit.ts";
import { idleClock } from "./idle_clock.ts";
import { verifyReplica, type VerifyReport } from "./verify.ts";
import { readLocalEnds } from "./positions.ts";
import {
  type CompactionSettings,
  Compactor,
  DEFAULT_COMPACTION,
  nextAligned,
} from "./compactor.ts";

/**
 * How often a replica is checked for the chain it extends when no level
 * interval is configured (otherwise at each L1 compaction tick); one small
 * ranged read, and none while the database is idle.
 */
const CHAIN_CHECK_MS = 30_000;

/** How long start-up waits for a replica's lease before capturing without it. */
const LEASE_START_WAIT_MS = 5_000;

/**
 * How often the WAL index is checked (commits, checkpoint threshold) while
 * the app commits: a quarter of the time the WAL's growth leaves until the
 * threshold, between these bounds (a slow writer costs 20 checks a second, a
 * bulk writer filling the WAL in 20 ms is caught within 5).
 */
const PRESSURE_CHECK_MS = 5;
const PRESSURE_BUSY_MAX_MS = 50;
/**
 * The longest pause between those checks while the app pauses (it committed
 * within IDLE_AFTER_MS): a burst after a pause is seen within this, before
 * the WAL has grown far past the checkpoint threshold.
 */
const PRESSURE_PAUSE_MS = 100;
/** The longest pause between those checks once the database is idle. */
const PRESSURE_IDLE_MS = 1_000;
/**
 * The monitor tick once the app has committed nothing for IDLE_AFTER_MS: at
 * most once a second (or every monitor-interval, when that is longer), so an
 * idle database costs about one wakeup a second; the first commit after a
 * quiet spell brings the monitor-interval back within PRESSURE_IDLE_MS.
 */
const IDLE_TICK_MS = 1_000;
const IDLE_AFTER_MS = 5_000;

export interface DbReplicationOptions extends MonitorOptions {
  monitorIntervalMs: number;
  replicas: { client: ReplicaClient; syncIntervalMs: number; validationIntervalMs?: number }[];
  compaction?: CompactionSettings;
  /** On divergence, start a new lineage with a fresh snapshot instead of stopping uploads. */
  newLineage?: boolean;
  /**
   * Local files no replica has yet, past which the oldest are merged into one
   * (a replica unreachable for long): local use stays about one database size.
   */
  maxPendingFiles?: number;
  /** How long the final sync at stop may take (DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS). */
  shutdownSyncTimeoutMs?: number;
}

/** Default shutdown-sync-timeout (the config's default; replicate passes it). */
const DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS = 10_000;

export const DEFAULT_MAX_PENDING_FILES = 128;

export class DbReplication {
  readonly monitor: Monitor;
  readonly replicators: Replicator[];
  readonly compactors: Compactor[];
  readonly #monitorIntervalMs: number;
  readonly #compaction: CompactionSettings;
  #timers: ReturnType<typeof setInterval>[] = [];
  #timeouts = new Set<ReturnType<typeof setTimeout>>();
  /** When the next monitor tick is due (see #poll). */
  #nextTickAt = 0;
  /** When the app last committed (the WAL index changed). */
  #lastActivity = 0;
  /** The WAL index changed since the last capture began (see #poll). */
  #uncaptured = true;
  /** Cancels this database's wait on the shared idle clock. */
  #idleWait: (() => void) | null = null;
  /** Per replica: when its retry safety net next runs. */
  #netAt: number[] = [];
  #maintenance: Promise<unknown>[] = [];
  #ticking: Promise<unknown> | null = null;
  /** Pruning and merging of local files, one at a time (see #tidyLocal). */
  #localOps: Promise<void> = Promise.resolve();
  #stopped = false;
  #opened = false;
  readonly #validationIntervalsMs: number[];
  readonly #maxPendingFiles: number;
  readonly #shutdownSyncTimeoutMs: number;

  constructor(opts: DbReplicationOptions) {
    this.monitor = new Monitor(opts);
    this.#monitorIntervalMs = opts.monitorIntervalMs;
    this.replicators = opts.replicas.map((r) =>
      new Replicator(this.monitor, r.client, {
        syncIntervalMs: r.syncIntervalMs,
        newLineage: opts.newLineage,
      })
    );
    this.#compaction = opts.compaction ?? DEFAULT_COMPACTION;
    this.compactors = this.replicators.map((r, k) =>
      new Compactor(r.index, this.#compaction, {
        localL0Dir: this.monitor.ltxDir,
        keepDir: join(this.monitor.metaPath, "compacted", String(k)),
        localModes: () => this.monitor.localModes,
      })
    );
    this.#maintenance = this.replicators.map(() => Promise.resolve());
    this.#validationIntervalsMs = opts.replicas.map((r) => r.validationIntervalMs ?? 0);
    this.#maxPendingFiles = Math.max(2, opts.maxPendingFiles ?? DEFAULT_MAX_PENDING_FILES);
    this.#shutdownSyncTimeoutMs = opts.shutdownSyncTimeoutMs ?? DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS;
  }

  async start(): Promise<void> {
    await this.#restrictReplicaModes(); // before the lease: its file is the first one written
    await this.#acquireLeases();
    if (this.#stopped) return; // stopped while waiting for a lease: nothing was opened
    this.#opened = true;
    try {
      await this.monitor.open();
    } catch (e) {
      // nothing was captured: no final sync follows, the leases go back
      this.#opened = false;
      this.#stopped = true;
      for (const r of this.replicators) r.cancelRequested();
      await withinMs(this.#releaseLeases(), 2_000);
      throw e;
    }
    log("info", "replicating", {
      db: this.monitor.dbPath,
      position: this.monitor.position.txid,
      replicas: this.replicators.map((r) => replicaName(r.client)).join(","),
    });
    // capture starts at once; the first sync runs beside it, so an unreachable
    // replica never holds up capturing (nor the WAL's checkpoints)
    this.#tick();
    for (const r of this.replicators) r.requestSync(() => this.#sync(r));
    this.#nextTickAt = Date.now() + this.#monitorIntervalMs;
    this.#lastActivity = Date.now();
    this.#netAt = this.replicators.map((r) => Date.now() + r.syncIntervalMs);
    this.#poll();
    this.#validationIntervalsMs.forEach((ms, k) => {
      if (ms > 0) this.#timers.push(setInterval(() => this.#serial(k, () => this.validate(k)), ms));
    });
    const c = this.#compaction;
    c.levelIntervalsMs.forEach((interval, i) => {
      this.#aligned(interval, (k) => this.compact(k, i + 1));
    });
    this.#aligned(c.snapshotIntervalMs, (k) => this.#scheduledSnapshot(k));
    // a replica that lost its files (emptied, bucket recreated) is re-seeded
    this.#aligned(c.levelIntervalsMs[0] ?? CHAIN_CHECK_MS, (k) => this.#checkChain(k));
    if (c.retentionEnabled) {
      this.#aligned(c.l0RetentionCheckIntervalMs, (k) => this.enforceRetention(k));
    }
  }

  /**
   * Waits while another process holds a replica's lease, retrying each
   * second: the database is not touched before, so a second `strata
   * replicate` never interleaves with the first and takes over where it
   * stopped. A replica that cannot be reached or refuses the write (no
   * bucket, no permission, connection refused) or answers too slowly does
   * not hold up capturing nor the other replicas: its syncs retry (with
   * backoff) and say why.
   */
  async #acquireLeases(): Promise<void> {
    await Promise.all(this.replicators.map(async (r) => {
      const lease = r.lease;
      if (!lease) {
        log("warn", "this replica type has no lease: make sure one strata replicate writes to it", {
          replica: replicaName(r.client),
        });
        return;
      }
      while (!this.#stopped) {
        const held = await withinMs(lease.ensure(), LEASE_START_WAIT_MS);
        if (held === true) return;
        if (held === false && lease.lastError instanceof LeaseHeldError) {
          await new Promise((res) => setTimeout(res, 1000));
          continue;
        }
        log("warn", "replica unavailable at start: capturing goes on, it is retried", {
          db: this.monitor.dbPath,
          replica: replicaName(r.client),
          error: held === null ? `no answer in ${LEASE_START_WAIT_MS} ms` : lease.problem,
        });
        return;
      }
    }));
  }

  /** Replica files and directories are written no more readable than the database. */
  async #restrictReplicaModes(): Promise<void> {
    const mode = (await Deno.stat(this.monitor.dbPath).catch(() => null))?.mode;
    if (mode === null || mode === undefined) return; // no modes on this platform
    for (const r of this.replicators) r.client.restrictModes?.(mode);
  }

  /** Runs `fn` for every replica at each wall-clock multiple of `intervalMs`. */
  #aligned(intervalMs: number, fn: (k: number) => Promise<unknown>): void {
    if (!(intervalMs > 0)) return;
    const schedule = () => {
      const t = setTimeout(() => {
        this.#timeouts.delete(t);
        if (this.#stopped) return;
        for (let k = 0; k < this.replicators.length; k++) {
          fn(k).catch((e) =>
            log("error", "replica maintenance failed", {
              db: this.monitor.dbPath,
              replica: this.replicators[k].client.location,
              error: e,
            })
          );
        }
        schedule();
      }, nextAligned(Date.now(), intervalMs) - Date.now());
      this.#timeouts.add(t);
    };
    schedule();
  }

  /** Runs maintenance work for replica `k` after what is already queued for it. */
  #serial<T>(k: number, fn: () => Promise<T>): Promise<T> {
    const run = this.#maintenance[k].then(fn, fn);
    this.#maintenance[k] = run.catch(() => {});
    return run;
  }

  /** Compacts replica `k`'s level `level` (skipped when the level below has nothing new). */
  compact(k: number, level: number): Promise<unknown> {
    const r = this.replicators[k];
    if (!r.index.loaded || !r.writable || this.compactors[k].inputsFor(level).length === 0) {
      return Promise.resolve(null);
    }
    return this.#serial(k, async () => {
      if (await this.#leased(k)) await this.compactors[k].compact(level);
    }).then(() => this.#tidyLocal());
  }

  /** Holds replica `k`'s lease (taken again if it lapsed while idle); false when refused. */
  async #leased(k: number): Promise<boolean> {
    const lease = this.replicators[k].lease;
    return !lease || await lease.ensure();
  }

  /** Replica `k` still holds the chain it extends, else it is re-seeded at once. */
  async #checkChain(k: number): Promise<void> {
    const r = this.replicators[k];
    const lost = await this.#serial(k, () => r.checkChain());
    if (lost !== null) r.requestSync(() => this.#sync(r));
  }

  async #scheduledSnapshot(k: number): Promise<void> {
    const r = this.replicators[k];
    if (!r.index.loaded) return;
    // any full copy counts (the monitor's first L0 file is one)
    let lastSnap = 0n;
    for (const f of r.index.all()) {
      if (f.minTXID === 1n && f.maxTXID > lastSnap) lastSnap = f.maxTXID;
    }
    if (this.monitor.position.txid <= lastSnap) return; // nothing new since the last one
    await this.#serial(k, () => r.snapshot("snapshot interval"));
  }

  /** Snapshots every replica now (on demand). */
  async snapshot(reason = "requested"): Promise<void> {
    await Promise.all(this.replicators.map((r, k) => this.#serial(k, () => r.snapshot(reason))));
  }

  /**
   * Restores replica `k`'s latest state into the meta directory and compares
   * its checksum with the local position or history at that TXID; logs the
   * result (an error naming both checksums, or the broken file).
   */
  async validate(k: number): Promise<VerifyReport> {
    const r = this.replicators[k];
    const report = await verifyReplica(r.client, {
      tmpDir: this.monitor.metaPath,
      integrityCheck: "quick",
      expectedAt: async (txid) => {
        const f = (await this.monitor.localFiles()).find((f) => f.maxTXID === txid);
        if (!f) return null;
        return { checksum: (await readLocalEnds(f.path)).post, source: "local history" };
      },
    });
    if (report.ok) {
      log("info", "replica validated", {
        db: this.monitor.dbPath,
        replica: r.client.location,
        txid: report.txid,
        comparedWith: report.comparedWith,
      });
    } else {
      log("error", "replica validation failed", {
        db: this.monitor.dbPath,
        replica: r.client.location,
        error: report.error,
      });
    }
    return report;
  }

  enforceRetention(k: number, now = Date.now()): Promise<unknown> {
    const r = this.replicators[k];
    if (!r.index.loaded || !r.writable || this.compactors[k].expired(now).length === 0) {
      return Promise.resolve([]); // nothing to delete: no request, not even for the lease
    }
    return this.#serial(k, async () => {
      return await this.#leased(k) ? await this.compactors[k].enforceRetention(now) : [];
    });
  }

  #sync(r: Replicator): void {
    if (!this.#stopped) r.sync().then(() => this.#tidyLocal());
  }

  /**
   * Prunes and bounds the local files, one run at a time per database (two
   * merges at once made overlapping files that stopped uploads for good).
   */
  #tidyLocal(): Promise<void> {
    const run = this.#localOps.then(async () => {
      if (this.#stopped) return;
      await this.#prune();
      await this.#boundPending();
    }).catch((e) =>
      log("error", "local files could not be merged", { db: this.monitor.dbPath, error: e })
    );
    this.#localOps = run;
    return run;
  }

  /**
   * One timer per database for everything that runs between events: the
   * WAL index check (every PRESSURE_CHECK_MS while the app commits, backing
   * off to PRESSURE_IDLE_MS while it does not; at the checkpoint threshold
   * it captures and checkpoints at once), the monitor tick (every
   * monitor-interval, IDLE_TICK_MS while idle) and the retry safety net of
   * replicas with work left (every sync-interval).
   */
  #poll(onBeat = false): void {
    if (this.#stopped) return;
    let delay: number;
    try {
      delay = this.#pollOnce(Date.now(), onBeat);
    } catch (e) {
      // (an I/O error reading the WAL index, say): said, and checked again
      log("error", "monitor check failed", { db: this.monitor.dbPath, error: e });
      delay = this.#monitorIntervalMs;
    }
    if (delay >= PRESSURE_IDLE_MS) {
      // idle: one shared timer for every idle database in the process
      this.#idleWait = idleClock.schedule(() => {
        this.#idleWait = null;
        this.#poll(true);
      });
      return;
    }
    const t = setTimeout(() => {
      this.#timeouts.delete(t);
      this.#poll();
    }, Math.max(1, delay));
    this.#timeouts.add(t);
  }

  /**
   * One round of #poll's checks; returns how long until the next one is due
   * (ms). On a beat of the idle clock, a tick due before the next beat runs
   * now (the beats are shared, so they do not fall on each database's time).
   */
  #pollOnce(now: number, onBeat: boolean): number {
    // checked during a capture too: the moment a commit is first seen stamps the file that holds it
    const atThreshold = this.monitor.underPressure();
    const pressure = !this.#ticking && atThreshold;
    if (this.monitor.quietChecks === 0) {
      this.#lastActivity = now;
      this.#uncaptured = true;
      this.#nextTickAt = Math.min(this.#nextTickAt, now + this.#monitorIntervalMs);
    }
    const due = now >= this.#nextTickAt || (onBeat && this.#nextTickAt - now < IDLE_TICK_MS);
    const idle = now - this.#lastActivity >= IDLE_AFTER_MS;
    if (pressure || due) {
      if (!this.#uncaptured && !this.#ticking && this.monitor.idleCheck()) {
        // nothing changed in the WAL index since the last capture and nothing is due
      } else if (this.#tick(!this.#uncaptured)) this.#uncaptured = false;
      this.#nextTickAt = now +
        (idle ? Math.max(this.#monitorIntervalMs, IDLE_TICK_MS) : this.#monitorIntervalMs);
    }
    const quiet = Math.min(this.monitor.quietChecks, 16);
    const busy = Math.min(
      Math.max(this.monitor.thresholdInMs / 4, PRESSURE_CHECK_MS),
      PRESSURE_BUSY_MAX_MS,
    );
    // a pause between commits backs off to PRESSURE_PAUSE_MS; only an idle database to a second
    let delay = Math.min(
      busy * 2 ** quiet,
      idle ? PRESSURE_IDLE_MS : PRESSURE_PAUSE_MS,
      this.#nextTickAt - now,
    );
    this.replicators.forEach((r, k) => {
      // new files ask for a sync as soon as they exist; this retries what is left
      if (r.idle) {
        this.#netAt[k] = now + r.syncIntervalMs;
        return;
      }
      if (now >= this.#netAt[k]) {
        this.#netAt[k] = now + r.syncIntervalMs;
        r.requestSync(() => this.#sync(r));
      }
      delay = Math.min(delay, this.#netAt[k] - now);
    });
    return delay;
  }

  /** Starts a capture unless one runs (false then). */
  #tick(indexUnchanged = false): boolean {
    if (this.#ticking || this.#stopped) return false;
    this.#ticking = this.monitor.capture(indexUnchanged)
      .then((wrote) => {
        if (!wrote) return;
        this.#lastActivity = Date.now();
        for (const r of this.replicators) r.requestSync(() => this.#sync(r));
        // bounded even while a failing replica's syncs are far apart (backoff)
        if (this.replicators.some((r) => r.lastError !== null)) this.#tidyLocal();
      })
      .catch((e) => log("error", "capture failed", { db: this.monitor.dbPath, error: e }))
      .finally(() => (this.#ticking = null));
    return true;
  }

  /** Captures what is committed now and uploads it to every replica. */
  async syncAll(): Promise<void> {
    await this.monitor.capture();
    await Promise.all(this.replicators.map((r) => r.sync()));
    await this.#tidyLocal();
  }

  /**
   * Deletes local L0 files every replica has uploaded and (when levels are
   * configured) compacted into L1, so L1 compaction reads them locally;
   * keeps the newest local file (the persisted position).
   */
  async #prune(): Promise<void> {
    const levels = this.#compaction.levelIntervalsMs.length > 0;
    const positions = this.replicators.map((r) => {
      const up = r.divergence ? null : r.replicaTXID; // keep local files while diverged
      if (up === null || !levels || !r.index.loaded) return up;
      const l1 = r.index.last(1)?.maxTXID ?? 0n;
      const snap = r.index.last(9)?.maxTXID ?? 0n;
      const done = l1 > snap ? l1 : snap;
      return done < up ? done : up;
    });
    if (positions.some((p) => p === null)) return;
    const min = positions.reduce((a, b) => (a! < b! ? a : b))!;
    const files = await this.monitor.localFiles();
    const newest = files.reduce<LocalFile | null>(
      (a, f) => (!a || f.maxTXID > a.maxTXID ? f : a),
      null,
    );
    for (const f of files) {
      if (f !== newest && f.maxTXID <= min) await Deno.remove(f.path).catch(() => {});
    }
  }

  /**
   * Bounds the local files while a replica is unreachable: when more than
   * maxPendingFiles are not in every replica yet, they (a contiguous chain,
   * never the newest file: it is the persisted position) are merged into
   * one file, which holds each page once.
   */
  async #boundPending(): Promise<void> {
    // merged files beside their inputs (a crash, or an older strata's concurrent merges)
    const local = await this.monitor.localFiles();
    for (const f of redundantFiles(local)) {
      log("warn", "removing a local file another one holds entirely", {
        db: this.monitor.dbPath,
        file: f.path,
      });
      await Deno.remove(f.path).catch(() => {});
    }
    let min = -1n;
    for (const r of this.replicators) {
      const p = r.lastKnownTXID;
      if (min < 0n || p < min) min = p;
    }
    const pending = (await this.monitor.localFiles()).slice(0, -1).filter((f) => f.maxTXID > min);
    if (pending.length < this.#maxPendingFiles) return;
    const run = [pending[0]];
    for (const f of pending.slice(1)) {
      if (f.minTXID !== run[run.length - 1].maxTXID + 1n) break;
      run.push(f);
    }
    if (run.length < 2) return;
    const name = formatLtxFileName(run[0].minTXID, run[run.length - 1].maxTXID);
    const path = join(this.monitor.ltxDir, name);
    await mergeIntoFile(run.map((f) => f.path), path);
    for (const f of run) await Deno.remove(f.path).catch(() => {});
    log("warn", "merged local files no replica has yet", {
      db: this.monitor.dbPath,
      file: name,
      merged: run.length,
    });
  }

  /** True once start() opened the database (it may return without, when cancelled). */
  get opened(): boolean {
    return this.#opened;
  }

  /** Makes a start still waiting for a lease return without opening anything. */
  cancelStart(): void {
    if (!this.#opened) this.#stopped = true;
  }

  /**
   * Stops timers, captures the last committed frames and uploads them, within
   * the shutdown-sync-timeout. Throws a FinalSyncError (after logging, per
   * replica, which TXIDs it lacks and why) when any replica did not get
   * everything committed: the caller exits non-zero.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    for (const t of this.#timeouts) clearTimeout(t);
    this.#idleWait?.();
    for (const r of this.replicators) r.cancelRequested();
    if (!this.#opened) {
      // nothing was captured: nothing to sync; leases taken before a failed open go back
      await withinMs(this.#releaseLeases(), 2_000);
      return;
    }
    const timeoutMs = this.#shutdownSyncTimeoutMs;
    const work = (async () => {
      await Promise.all(this.#maintenance);
      await this.#ticking;
      // the captured state stays readable through the final sync (a replica
      // re-seeded now needs a snapshot of it); closed once the uploads are done
      await this.monitor.finish();
      await Promise.all(this.replicators.map((r) => r.sync()));
    })();
    const closed = work.finally(() => this.monitor.close()).catch(() => {});
    let done: true | null;
    try {
      // 0: one attempt however long its requests' own retries take (Litestream's meaning)
      done = timeoutMs === 0
        ? await work.then(() => true as const)
        : await withinMs(work.then(() => true as const), timeoutMs);
      if (done) await closed;
      else void this.monitor.close().catch(() => {}); // a hung upload keeps no read transaction
    } catch (e) {
      log("error", "final sync failed", { db: this.monitor.dbPath, error: e });
      this.#releaseLeases(); // not awaited: a replica that hangs must not hold up the exit
      throw e;
    }
    const want = this.monitor.position.txid;
    const lacking = this.replicators.flatMap((r) => {
      if (r.divergence) {
        // reported when detected; uploads to it stopped on purpose (restart with -new-lineage)
        log("error", "final sync: the replica diverged and was not updated", {
          db: this.monitor.dbPath,
          replica: replicaName(r.client),
          reason: r.divergence.reason,
        });
        return [];
      }
      const have = r.lastKnownTXID;
      if (have >= want) return [];
      const reason = done === null
        ? `the final sync did not finish within shutdown-sync-timeout (${timeoutMs} ms)`
        : r.lastError?.message ?? "not uploaded";
      const lacks = `${formatTXID(have + 1n)}-${formatTXID(want)}`;
      log("error", "final sync: committed transactions did not reach a replica", {
        db: this.monitor.dbPath,
        replica: replicaName(r.client),
        lacks,
        reason,
      });
      return [`${r.client.type}:${r.client.location} lacks TXIDs ${lacks} (${reason})`];
    });
    if (lacking.length > 0) {
      this.#releaseLeases();
      throw new FinalSyncError(this.monitor.dbPath, lacking);
    }
    await withinMs(this.#releaseLeases(), 2_000);
    log("info", "stopped", { db: this.monitor.dbPath, position: this.monitor.position.txid });
  }

  #releaseLeases(): Promise<unknown> {
    return Promise.all(this.replicators.map((r) => r.lease?.release().catch(() => {})));
  }
}

/** Committed transactions did not reach every replica when replication stopped. */
export class FinalSyncError extends Error {
  constructor(db: string, lacking: string[]) {
    super(`database ${db}: final sync incomplete: ${lacking.join("; ")}`);
    this.name = "FinalSyncError";
  }
}

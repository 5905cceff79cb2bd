/**
 * The databases one `strata replicate` process replicates, by path: added
 * from the config or found in a directory, stopped and started again on
 * request (the control socket), synced on demand, all stopped at exit.
 * Operations on one database run one at a time.
 */

import { log } from "../log.ts";
import type { DbReplication } from "./db_replication.ts";
import type { Replicator } from "./replicator.ts";

export type DbState = "starting" | "replicating" | "stopping" | "stopped" | "failed";

export interface ManagedDb {
  path: string;
  state: DbState;
  /** The running replication; null while stopped (or when starting failed). */
  replication: DbReplication | null;
  /** Why starting or stopping failed. */
  error: string | null;
}

interface Entry extends ManagedDb {
  make: () => DbReplication;
  queue: Promise<unknown>;
  /** The replication being started (start can wait long, e.g. for a replica's lease). */
  starting: DbReplication | null;
  aborted: boolean;
}

export interface SyncResult {
  /** The local position after the sync. */
  txid: bigint;
  /** The lowest TXID any replica has (after the upload with `wait`), null when unknown. */
  replicatedTXID: bigint | null;
  /** True when the sync captured something new. */
  changed: boolean;
}

export class DbNotFoundError extends Error {
  constructor(path: string) {
    super(`database ${path} is not replicated by this process`);
    this.name = "DbNotFoundError";
  }
}

export class DbNotRunningError extends Error {
  constructor(path: string, state: DbState) {
    super(`database ${path} is ${state}, not replicating (strata start ${path})`);
    this.name = "DbNotRunningError";
  }
}

export class DbSet {
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  has(path: string): boolean {
    return this.#entries.has(path);
  }

  list(): ManagedDb[] {
    return [...this.#entries.values()].map(({ path, state, replication, error }) => ({
      path,
      state,
      replication,
      error,
    }));
  }

  /** The running replications (for metrics). */
  running(): DbReplication[] {
    const out: DbReplication[] = [];
    for (const e of this.#entries.values()) if (e.replication) out.push(e.replication);
    return out;
  }

  /**
   * Adds database `path` (replicated by what `make` builds) and starts it.
   * Starting failures are thrown; the database stays listed as failed when
   * `keepOnFailure`.
   */
  async add(path: string, make: () => DbReplication, keepOnFailure = false): Promise<void> {
    if (this.#closed) return; // shutting down
    if (this.#entries.has(path)) return;
    const e: Entry = {
      path,
      make,
      state: "stopped",
      replication: null,
      error: null,
      queue: Promise.resolve(),
      starting: null,
      aborted: false,
    };
    this.#entries.set(path, e);
    try {
      await this.#serial(e, () => this.#start(e));
    } catch (err) {
      if (!keepOnFailure) this.#entries.delete(path);
      throw err;
    }
  }

  /** Stops (with a final sync) and forgets database `path`. */
  async remove(path: string): Promise<void> {
    const e = this.#entries.get(path);
    if (!e) return;
    try {
      await this.#serial(e, () => this.#stop(e));
    } finally {
      this.#entries.delete(path);
    }
  }

  /** Starts a stopped database again. */
  start(path: string): Promise<"started" | "already_running"> {
    const e = this.#get(path);
    return this.#serial(e, async () => {
      if (e.replication) return "already_running";
      await this.#start(e);
      return "started";
    });
  }

  /** Stops replicating a database (final capture and sync); the process keeps running. */
  stop(path: string): Promise<"stopped" | "already_stopped"> {
    const e = this.#get(path);
    return this.#serial(e, async () => {
      if (!e.replication) return "already_stopped";
      await this.#stop(e);
      return "stopped";
    });
  }

  /**
   * Captures what is committed now. With `wait`, also uploads it to every
   * replica and returns only once each has it (an error otherwise).
   */
  async sync(path: string, wait: boolean): Promise<SyncResult> {
    const e = this.#get(path);
    const run = e.replication;
    if (!run || e.state !== "replicating") throw new DbNotRunningError(path, e.state);
    const before = run.monitor.position.txid;
    await run.monitor.capture();
    const target = run.monitor.position.txid;
    if (wait) {
      await Promise.all(run.replicators.map((r) => uploadUntil(r, target)));
    } else {
      for (const r of run.replicators) r.sync(); // in the background; errors are the replicator's
    }
    let replicated: bigint | null = null;
    for (const r of run.replicators) {
      const t = r.replicaTXID;
      if (t === null) {
        replicated = null;
        break;
      }
      if (replicated === null || t < replicated) replicated = t;
    }
    return { txid: target, replicatedTXID: replicated, changed: target > before };
  }

  /** Stops every database (final syncs); false when any final sync failed. */
  async stopAll(): Promise<boolean> {
    this.#closed = true;
    const results = await Promise.allSettled(
      [...this.#entries.values()].map((e) => this.#serial(e, () => this.#stop(e))),
    );
    return results.every((r) => r.status === "fulfilled");
  }

  #get(path: string): Entry {
    const e = this.#entries.get(path);
    if (!e) throw new DbNotFoundError(path);
    return e;
  }

  #serial<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const run = e.queue.then(fn, fn);
    e.queue = run.catch(() => {});
    return run;
  }

  async #start(e: Entry): Promise<void> {
    e.state = "starting";
    e.error = null;
    e.aborted = false;
    const run = e.make();
    e.starting = run;
    try {
      await run.start();
    } catch (err) {
      e.state = "failed";
      e.error = (err as Error).message;
      await run.stop().catch(() => {});
      throw err;
    } finally {
      e.starting = null;
    }
    if (e.aborted || !run.opened) {
      // shutting down: a start that was cancelled opened nothing; one that
      // finished meanwhile is stopped cleanly (final sync)
      if (run.opened) await run.stop().catch(() => {});
      e.state = "stopped";
      return;
    }
    e.replication = run;
    e.state = "replicating";
  }

  /**
   * Shutting down: databases still starting (waiting for a replica's lease,
   * say) give up, opening nothing; no database is added from now on.
   */
  abortStarting(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) {
      if (e.starting) {
        e.aborted = true;
        e.starting.cancelStart();
      }
    }
  }

  async #stop(e: Entry): Promise<void> {
    const run = e.replication;
    if (!run) return;
    e.state = "stopping";
    try {
      await run.stop();
      e.state = "stopped";
    } catch (err) {
      e.state = "failed";
      e.error = (err as Error).message;
      throw err;
    } finally {
      e.replication = null;
      log("info", "stopped replicating", { db: e.path, state: e.state });
    }
  }
}

/** Syncs replica `r` until it has TXID `target` (a sync already under way may predate it). */
async function uploadUntil(r: Replicator, target: bigint): Promise<void> {
  const name = `${r.client.type}:${r.client.location}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    await r.sync();
    if (r.lastError) throw new Error(`replica ${name}: ${r.lastError.message}`);
    if (r.divergence) {
      throw new Error(
        `replica ${name} has diverged (uploads to it stopped): ${r.divergence.reason}`,
      );
    }
    if ((r.replicaTXID ?? 0n) >= target) return;
  }
  throw new Error(`replica ${name} is at TXID ${r.replicaTXID} after 3 syncs, not ${target}`);
}

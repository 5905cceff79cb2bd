/**
 * One writer per replica: a time-limited lease held in the replica's
 * `lock.json` (Litestream v0.5's object name and fields: `generation`,
 * `expires_at` as an RFC 3339 time, `owner` "host:pid"; strata adds a random
 * `instance` id, which Litestream's JSON reading ignores), taken
 * with a conditional create, renewed with a conditional replace once half
 * its lifetime has passed while the replicator writes (every write calls
 * `ensure` first), and deleted on a clean stop. An idle replicator makes no
 * requests: its lease lapses one lifetime after its last write and is taken
 * again by its next write, unless another process holds it by then.
 *
 * A lease whose holder is gone can be taken over: when it expired, or at
 * once when its owner is a process on this host that no longer exists (a
 * `kill -9`, a crash), so a restart never waits for the timeout.
 */

import { hostname } from "node:os";
import process from "node:process";
import type { LeaseStore } from "../storage/lease_store.ts";
import { log } from "../log.ts";

export const DEFAULT_LEASE_TTL_MS = 60_000;

export class LeaseHeldError extends Error {
  constructor(location: string, owner: string, expiresAt: Date) {
    super(
      `replica lease ${location} is held by ${owner} until ${expiresAt.toISOString()}: another strata replicate is writing to this replica; this one waits and takes over when that one stops or its lease expires`,
    );
    this.name = "LeaseHeldError";
  }
}

interface LeaseBody {
  generation: number;
  /** RFC 3339 (Go's time.Time in JSON). */
  expires_at: string;
  owner: string;
  instance?: string;
}

/**
 * A lease object's generation and expiry (ms), as Litestream writes it or
 * as strata before it did (`token`, `expires_at` in Unix seconds); null when
 * it is not a lease.
 */
function readLease(
  text: string,
): { generation: number; expiresMs: number; owner: string; instance?: string } | null {
  try {
    const b = JSON.parse(text);
    const expiresMs = typeof b.expires_at === "string"
      ? Date.parse(b.expires_at)
      : typeof b.expires_at === "number"
      ? b.expires_at * 1000
      : NaN;
    const generation = b.generation ?? b.token ?? 0;
    if (!Number.isFinite(expiresMs) || typeof b.owner !== "string") return null;
    if (!Number.isInteger(generation) || generation < 0) return null;
    return { generation, expiresMs, owner: b.owner, instance: b.instance };
  } catch {
    return null;
  }
}

export interface LeaseOptions {
  ttlMs?: number;
  /** "host:pid" by default. */
  owner?: string;
  clock?: () => number;
  /** Whether a process id on this host is running (injected for tests). */
  isAlive?: (pid: number) => boolean;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"; // exists, not ours
  }
}

export class Lease {
  readonly store: LeaseStore;
  readonly owner: string;
  readonly instance = crypto.randomUUID();
  readonly ttlMs: number;
  readonly #clock: () => number;
  readonly #isAlive: (pid: number) => boolean;
  #version: string | null = null;
  #token = 0;
  #expiresAt = 0;
  #renewing: ReturnType<typeof setInterval> | null = null;
  /** When `ensure` was last called: renewals go on for one lifetime after it. */
  #lastUsed = -Infinity;
  #warnedBestEffort = false;
  /** Why the lease is not held (the last refusal or failure), or null. */
  problem: string | null = null;
  /** The last refusal or failure itself (a LeaseHeldError when another process holds it). */
  lastError: Error | null = null;

  constructor(store: LeaseStore, opts: LeaseOptions = {}) {
    this.store = store;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.owner = opts.owner ?? `${hostname()}:${Deno.pid}`;
    this.#clock = opts.clock ?? Date.now;
    this.#isAlive = opts.isAlive ?? pidAlive;
  }

  /** True while this process holds an unexpired lease. */
  get held(): boolean {
    return this.#version !== null && this.#clock() < this.#expiresAt;
  }

  get token(): number {
    return this.#token;
  }

  #body(token: number): string {
    const b: LeaseBody = {
      generation: token,
      expires_at: new Date(this.#clock() + this.ttlMs).toISOString(),
      owner: this.owner,
      instance: this.instance,
    };
    return JSON.stringify(b);
  }

  /** Takes the lease, or throws LeaseHeldError naming the holder. */
  async acquire(): Promise<void> {
    const cur = await this.store.read();
    let version: string | null;
    let token: number;
    if (!cur) {
      token = 1;
      version = await this.store.create(this.#body(token));
      if (version === null) return await this.acquire(); // created meanwhile: look again
    } else {
      const b = readLease(cur.body);
      if (!b) {
        throw new Error(`replica lease ${this.store.location} is not a lease object; remove it`);
      }
      const ours = b.instance === this.instance;
      const expired = b.expiresMs <= this.#clock();
      if (!ours && !expired && !this.#holderGone(b.owner)) {
        throw new LeaseHeldError(this.store.location, b.owner, new Date(b.expiresMs));
      }
      if (!ours) {
        log("info", "taking over the replica lease", {
          lease: this.store.location,
          previous: b.owner,
          reason: expired ? "expired" : "its process is gone",
        });
      }
      token = ours ? b.generation : b.generation + 1;
      version = await this.store.replace(this.#body(token), cur.version);
      if (version === null) {
        throw new LeaseHeldError(this.store.location, "another process (just now)", new Date());
      }
    }
    if (!this.store.conditional) {
      // best effort on a server without conditional writes: read back our write
      const back = await this.store.read();
      if (!back || !back.body.includes(this.instance)) {
        throw new LeaseHeldError(this.store.location, "another process (just now)", new Date());
      }
      if (!this.#warnedBestEffort) {
        this.#warnedBestEffort = true;
        log("warn", "the replica's server ignores conditional writes: the lease is best effort", {
          lease: this.store.location,
        });
      }
    }
    this.#version = version;
    this.#token = token;
    this.#expiresAt = this.#clock() + this.ttlMs;
    this.problem = null;
  }

  /** True when `owner` is "thishost:pid" and that process does not exist. */
  #holderGone(owner: string): boolean {
    const i = owner.lastIndexOf(":");
    if (i < 0 || owner.slice(0, i) !== hostname()) return false;
    const pid = Number(owner.slice(i + 1));
    return Number.isInteger(pid) && pid > 0 && pid !== Deno.pid && !this.#isAlive(pid);
  }

  /** Holds the lease (acquiring or renewing as due); false with `problem` set when refused. */
  async ensure(): Promise<boolean> {
    this.#lastUsed = this.#clock();
    try {
      if (this.#version === null || !this.held) {
        this.#version = null;
        await this.acquire();
        this.#startRenewing();
      } else if (this.#renewDue()) {
        await this.renew();
      }
      this.lastError = null;
      return this.held;
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.problem) log("error", "replica lease not held", { error: msg });
      this.problem = msg;
      this.lastError = e as Error;
      return false;
    }
  }

  /**
   * Extends the lease; a lease changed by someone else is lost (not held any
   * more). Concurrent calls (the renewal timer and `ensure`) share one
   * replace: two replaces from the same version would make the second look
   * like someone else took the lease.
   */
  renew(): Promise<void> {
    this.#renewal ??= this.#renewOnce().finally(() => {
      this.#renewal = null;
    });
    return this.#renewal;
  }

  #renewal: Promise<void> | null = null;

  async #renewOnce(): Promise<void> {
    if (this.#version === null) return;
    const v = await this.store.replace(this.#body(this.#token), this.#version);
    if (v === null) {
      this.#version = null;
      this.problem = `replica lease ${this.store.location} was taken by another process`;
      log("error", "replica lease lost: uploads stop", { lease: this.store.location });
      return;
    }
    this.#version = v;
    this.#expiresAt = this.#clock() + this.ttlMs;
  }

  #startRenewing(): void {
    if (this.#renewing !== null) return;
    this.#renewing = setInterval(() => {
      // idle for a lifetime: let the lease lapse rather than renew it forever
      if (this.#version === null || !this.#renewDue()) return;
      if (this.#clock() - this.#lastUsed > this.ttlMs) return;
      this.renew().catch((e) =>
        log("warn", "replica lease renewal failed; retrying", {
          lease: this.store.location,
          error: e,
        })
      );
    }, Math.max(50, Math.floor(this.ttlMs / 6)));
    Deno.unrefTimer(this.#renewing);
  }

  /** Less than half the lifetime left. */
  #renewDue(): boolean {
    return this.#expiresAt - this.#clock() < this.ttlMs / 2;
  }

  /** Stops renewing and deletes the lease object (if still ours). */
  async release(): Promise<void> {
    if (this.#renewing !== null) clearInterval(this.#renewing);
    this.#renewing = null;
    const v = this.#version;
    this.#version = null;
    if (v !== null) await this.store.remove(v);
  }
}

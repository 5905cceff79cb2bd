/**
 * `heartbeat-url`: a GET to a health-check service (healthchecks.io, a dead
 * man's switch) while every database is backed up, at most once per
 * `heartbeat-interval`, as Litestream v0.5 sends it. A database counts as
 * backed up when each of its replicas has no failing sync and no divergence,
 * and either holds the local position or synced within the interval (strata
 * makes no requests while idle, so an idle, caught-up replica is healthy).
 * When any is not, no ping goes out and the service raises its alarm.
 */

import { log } from "../log.ts";
import type { DbReplication } from "./db_replication.ts";

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5 * 60_000;
const PING_TIMEOUT_MS = 30_000;

/** Whether every replica of every database is backed up (see the module comment); false for none. */
export function allBackedUp(dbs: DbReplication[], withinMs: number, now = Date.now()): boolean {
  if (dbs.length === 0) return false;
  return dbs.every((db) =>
    db.replicators.every((r) => {
      if (r.lastError || r.divergence) return false;
      const caughtUp = r.replicaTXID !== null && r.replicaTXID >= db.monitor.position.txid;
      const recent = r.lastSyncAt !== null && now - r.lastSyncAt.getTime() <= withinMs;
      return caughtUp || recent;
    })
  );
}

export class Heartbeat {
  #timer: ReturnType<typeof setInterval> | null = null;
  #lastPingAt = 0;
  #pinging = false;

  constructor(
    readonly url: string,
    readonly intervalMs: number,
    readonly healthy: () => boolean,
  ) {}

  start(): void {
    // checked a few times per interval (Litestream: every 15 s), so a ping is never much late
    const every = Math.max(250, Math.min(15_000, Math.floor(this.intervalMs / 4)));
    this.#timer = setInterval(() => this.check(), every);
    Deno.unrefTimer(this.#timer);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Pings when the interval has passed since the last ping and everything is backed up. */
  async check(now = Date.now()): Promise<void> {
    if (this.#pinging || now - this.#lastPingAt < this.intervalMs || !this.healthy()) return;
    this.#pinging = true;
    try {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`status ${res.status}`);
      this.#lastPingAt = now;
    } catch (e) {
      log("warn", "heartbeat ping failed", { url: redact(this.url), error: e });
    } finally {
      this.#pinging = false;
    }
  }
}

/** The URL without user info or query (tokens), for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return "(the heartbeat URL)";
  }
}

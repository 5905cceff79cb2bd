/**
 * The web page on the metrics address (`addr:`): per database its state,
 * positions, lag over the last hour and last error; per replica its files
 * and bytes per level and its requests and errors since start; and the
 * restore-point timeline, where a click shows the exact `strata restore`
 * (and `strata clone`) command for that moment. Read-only (GET only), no
 * secrets (replica locations as logged, without credentials), everything
 * served from the binary (web_assets.ts: the page and uPlot, no CDN).
 */

import { basename } from "node:path";
import { formatTXID } from "../ltx/mod.ts";
import { listBranches } from "../branch/mod.ts";
import { buildTimeline, timelineJson } from "../restore/timeline.ts";
import type { DbSet } from "../replicate/mod.ts";
import type { Replicator } from "../replicate/replicator.ts";
import { type ReplicaClient, replicaName } from "../storage/mod.ts";
import { VERSION } from "../version.ts";
import { liveStatus } from "./control.ts";
import { WEB_ASSETS } from "./web_assets.ts";

/** How commands shown on the page name a database. */
export interface CommandTargets {
  /** The config file `strata replicate` read (absolute), or null (databases given as arguments). */
  configPath: string | null;
}

/** Operations per replica since start (see Metrics.instrument). */
export type OpCounts = (replica: string) => { requests: number; errors: number };

const HOUR_MS = 3_600_000;
const SAMPLE_MS = 10_000;

/** Lag of every replica, sampled every 10 s (and when the page asks), kept for an hour. */
export class LagHistory {
  readonly #series = new Map<string, [number, number][]>();
  #last = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  readonly #set: DbSet;

  constructor(set: DbSet) {
    this.#set = set;
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.sample(), SAMPLE_MS);
    void this.sample();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Takes a sample unless one was taken in the last 2 s. */
  async sample(now = Date.now()): Promise<void> {
    if (now - this.#last < 2_000) return;
    this.#last = now;
    for (const d of this.#set.list()) {
      for (const r of d.replication?.replicators ?? []) {
        const key = seriesKey(d.path, r.client);
        const lag = (await r.lagMs(now).catch(() => 0)) / 1000;
        const s = this.#series.get(key) ?? [];
        s.push([Math.round(now / 1000), lag]);
        while (s.length > 0 && s[0][0] * 1000 < now - HOUR_MS) s.shift();
        this.#series.set(key, s);
      }
    }
  }

  /** [unix seconds, lag seconds] pairs, oldest first. */
  series(db: string, client: ReplicaClient): [number, number][] {
    return this.#series.get(seriesKey(db, client)) ?? [];
  }
}

function seriesKey(db: string, c: ReplicaClient): string {
  return `${db}\u0000${replicaName(c)}`;
}

/**
 * A replica's URL as `strata` takes it, from its location, for the types
 * whose location reads back as the same replica; null for the others.
 */
export function replicaUrlOf(c: ReplicaClient): string | null {
  const loc = c.location;
  if (c.type === "file") return /[?#%\s]/.test(loc) ? null : `file://${loc}`;
  const s3 = /^(s3:\/\/[^\s?#]+) \((https?:\/\/[^\s/]+)\)$/.exec(loc);
  if (c.type === "s3") {
    return s3 ? `${s3[1]}?endpoint=${s3[2]}` : /^s3:\/\/\S+$/.test(loc) ? loc : null;
  }
  if (c.type === "sftp") return /^sftp:\/\/[^/\s]+\/(?!~\/)\S*$/.test(loc) ? loc : null;
  if (c.type === "gs" || c.type === "gcs" || c.type === "abs") {
    return /^[a-z]+:\/\/\S+$/.test(loc) ? loc : null;
  }
  return null;
}

/**
 * What `strata restore`/`strata clone` need besides the point to name
 * replica `k` of `db`. Restores go through the config that `strata
 * replicate` read (its keys and credentials); it tries the database's
 * replicas in order, so with several the point is named by TXID (the same
 * TXID is the same state in every replica of a database).
 */
function commandArgs(
  targets: CommandTargets,
  db: string,
  clients: ReplicaClient[],
  k: number,
): { restore: string[] | null; cloneSource: string[] | null; byTxid: boolean } {
  const url = replicaUrlOf(clients[k]);
  const cfg = targets.configPath ? ["-config", targets.configPath] : [];
  return {
    restore: targets.configPath ? [...cfg, db] : url ? [url] : null,
    cloneSource: url ? [...cfg, url] : null,
    byTxid: clients.length > 1,
  };
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...SECURITY_HEADERS },
  });
}

/** Branch lists read from a replica at most every 30 s. */
const branchCache = new Map<
  string,
  { at: number; list: Awaited<ReturnType<typeof listBranches>> }
>();

async function branchesOf(c: ReplicaClient) {
  const key = replicaName(c);
  const hit = branchCache.get(key);
  if (hit && Date.now() - hit.at < 30_000) return hit.list;
  const list = await listBranches(c).catch(() => []);
  branchCache.set(key, { at: Date.now(), list });
  return list;
}

function levelsOf(r: Replicator): { level: number; files: number; bytes: number }[] {
  if (!r.index.loaded) return [];
  const by = new Map<number, { level: number; files: number; bytes: number }>();
  for (const f of r.index.all()) {
    const e = by.get(f.level) ?? { level: f.level, files: 0, bytes: 0 };
    e.files++;
    e.bytes += f.size;
    by.set(f.level, e);
  }
  return [...by.values()].sort((a, b) => a.level - b.level);
}

/** The page's handler: null for paths it does not serve. */
export function webHandler(
  set: DbSet,
  lag: LagHistory,
  ops: OpCounts,
  targets: CommandTargets,
): (req: Request) => Promise<Response | null> {
  const startedAt = new Date();
  return async (req) => {
    const url = new URL(req.url);
    const asset = WEB_ASSETS[url.pathname === "/" ? "/index.html" : url.pathname];
    const api = url.pathname === "/api/status" || url.pathname === "/api/timeline";
    if (!asset && !api) return null;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("read-only: GET only\n", {
        status: 405,
        headers: { allow: "GET, HEAD", ...SECURITY_HEADERS },
      });
    }
    if (asset) {
      return new Response(asset.body, {
        headers: { "content-type": asset.type, ...SECURITY_HEADERS },
      });
    }
    if (url.pathname === "/api/status") {
      await lag.sample();
      const live = await liveStatus(set);
      const dbs = live.map((d) => {
        const run = set.list().find((m) => m.path === d.db)?.replication ?? null;
        const clients = run?.replicators.map((r) => r.client) ?? [];
        return {
          ...d,
          name: basename(d.db),
          // a database stopped meanwhile shows what liveStatus saw, without the extras
          replicas: d.replicas.filter((_r, k) => run?.replicators[k]).map((r, k) => {
            const rep = run!.replicators[k];
            return {
              ...r,
              state: r.diverged
                ? "diverged"
                : r.notRestorable
                ? "not restorable"
                : r.error
                ? "unreachable"
                : "ok",
              levels: levelsOf(rep),
              ops: ops(replicaName(rep.client)),
              lag: lag.series(d.db, rep.client),
              commands: commandArgs(targets, d.db, clients, k),
            };
          }),
        };
      });
      return json({ version: VERSION, startedAt, now: new Date(), dbs });
    }
    // /api/timeline?db=PATH&replica=K
    const db = url.searchParams.get("db") ?? "";
    const k = Number(url.searchParams.get("replica") ?? "0");
    const run = set.list().find((m) => m.path === db)?.replication;
    if (!run) return json({ error: `database ${db} is not replicating here` }, 404);
    const rep = run.replicators[k];
    if (!Number.isInteger(k) || !rep) return json({ error: `no replica ${k} for ${db}` }, 404);
    if (!rep.index.loaded) await rep.index.ensure().catch(() => {});
    if (!rep.index.loaded) return json({ error: "the replica has not been listed yet" }, 503);
    const t = buildTimeline(rep.index.all(), await branchesOf(rep.client));
    const commands = commandArgs(targets, db, run.replicators.map((r) => r.client), k);
    const replicaUrl = replicaUrlOf(rep.client);
    return json({
      db,
      replica: replicaName(rep.client),
      ...timelineJson(t),
      commands: {
        ...commands,
        // points written before age was switched on are read as stored: by URL, without keys
        unencryptedThrough: rep.index.unencryptedThrough > 0n
          ? formatTXID(rep.index.unencryptedThrough)
          : null,
        plainRestore: replicaUrl ? [replicaUrl] : null,
      },
    });
  };
}

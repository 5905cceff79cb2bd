/**
 * The control socket (`socket: {enabled, path}`): HTTP over a Unix socket,
 * with Litestream v0.5's endpoints and request bodies where it has them
 * (`POST /sync {path, wait, timeout}`, `POST /start {path}`, `POST /stop
 * {path}`, `GET /list`, `GET /info`), plus `GET /status` (the live form of
 * `strata status -json`). TXIDs are 16-hex-digit strings, as strata prints
 * them everywhere.
 */

import { replicaName } from "../storage/mod.ts";
import { formatChecksum, formatPosition, formatTXID } from "../ltx/mod.ts";
import {
  DbNotFoundError,
  DbNotRunningError,
  type DbSet,
  type Divergence,
  type ManagedDb,
} from "../replicate/mod.ts";
import { log } from "../log.ts";
import { DURATION_LIMITS } from "../config/limits.ts";
import { VERSION } from "../version.ts";

export interface ReplicaStatus {
  replica: string;
  /** Newest TXID in the replica (null until listed). */
  txid: string | null;
  /** Creation time of the replica's newest file, when its file list is loaded. */
  at: string | null;
  files: number | null;
  behindTXIDs: number | null;
  lagSeconds: number;
  lastSyncAt: string | null;
  error: string | null;
  /** Why the replica does not continue the local history (uploads to it stopped), or null. */
  diverged: string | null;
  /** Why the replica cannot be restored now (it is being re-seeded with a snapshot), or null. */
  notRestorable: string | null;
}

export interface DbStatus {
  db: string;
  state: ManagedDb["state"];
  error: string | null;
  local: { txid: string; checksum: string } | null;
  replicas: ReplicaStatus[];
}

/** The live status of every database in `set` (or just `path`). */
export async function liveStatus(set: DbSet, path?: string): Promise<DbStatus[]> {
  const now = Date.now();
  const out: DbStatus[] = [];
  for (const d of set.list()) {
    if (path !== undefined && d.path !== path) continue;
    const run = d.replication;
    const replicas: ReplicaStatus[] = [];
    if (run) {
      const local = run.monitor.position.txid;
      for (const r of run.replicators) {
        const newest = r.index.loaded
          ? r.index.all().reduce<{ maxTXID: bigint; createdAt: Date } | null>(
            (a, f) => (a === null || f.maxTXID > a.maxTXID ? f : a),
            null,
          )
          : null;
        const notRestorable = r.notRestorable;
        // a replica that cannot be restored holds nothing usable: behind by everything
        const txid = notRestorable !== null ? 0n : r.replicaTXID;
        replicas.push({
          replica: replicaName(r.client),
          txid: txid === null ? null : formatTXID(txid),
          at: newest?.createdAt.toISOString() ?? null,
          files: r.index.loaded ? r.index.all().length : null,
          behindTXIDs: txid === null ? null : Number(local > txid ? local - txid : 0n),
          lagSeconds: (await r.lagMs(now).catch(() => 0)) / 1000,
          lastSyncAt: r.lastSyncAt?.toISOString() ?? null,
          error: r.lastError?.message ?? null,
          diverged: describeDivergence(r.divergence),
          notRestorable,
        });
      }
    }
    out.push({
      db: d.path,
      state: d.state,
      error: d.error,
      local: run
        ? {
          txid: formatTXID(run.monitor.position.txid),
          checksum: formatChecksum(run.monitor.position.postApplyChecksum),
        }
        : null,
      replicas,
    });
  }
  return out;
}

function describeDivergence(d: Divergence | null): string | null {
  if (!d) return null;
  return `${d.reason} (local ${formatPosition(d.local)}, replica ${
    formatPosition(d.replica)
  }, detected ${d.detectedAt.toISOString()})`;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function errorResponse(e: unknown): Response {
  const status = e instanceof DbNotFoundError ? 404 : e instanceof DbNotRunningError ? 409 : 500;
  return json(status, { error: (e as Error).message });
}

async function body(
  req: Request,
): Promise<{ path: string; wait: boolean; timeout: number; replica?: string }> {
  let b: Record<string, unknown>;
  try {
    b = await req.json();
  } catch {
    throw new BadRequest("invalid request body (want JSON)");
  }
  if (typeof b.path !== "string" || b.path === "") throw new BadRequest("path required");
  // absent, null or 0: the default (as the older clients send it)
  const t = b.timeout ?? 0;
  const { min, max } = DURATION_LIMITS["control timeout"];
  if (t !== 0 && !(typeof t === "number" && t * 1000 >= min && t * 1000 <= max)) {
    throw new BadRequest(`timeout must be a number of seconds from ${min / 1000} to ${max / 1000}`);
  }
  if (b.replica !== undefined && typeof b.replica !== "string") {
    throw new BadRequest("replica must be a replica URL");
  }
  return {
    path: b.path,
    wait: b.wait === true,
    timeout: (t as number) || 30,
    ...(b.replica ? { replica: b.replica as string } : {}),
  };
}

class BadRequest extends Error {}

/** Rejects with a timeout error naming `what` once `seconds` have passed. */
async function within<T>(seconds: number, what: string, p: Promise<T>): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(
      () => reject(new Error(`${what}: timed out after ${seconds} s`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

function txidOf(set: DbSet, path: string): string | null {
  const run = set.list().find((d) => d.path === path)?.replication;
  return run ? formatTXID(run.monitor.position.txid) : null;
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Serves the control API for `set` on the Unix socket at `path` (mode `permissions`). */
export async function serveControl(
  set: DbSet,
  opts: {
    path: string;
    permissions: number;
    /** `POST /register`: replicates database `path` to replica `url` from now on. */
    register?: (path: string, url: string) => Promise<void>;
  },
): Promise<ControlServer> {
  try {
    const st = await Deno.lstat(opts.path);
    if (!st.isSocket) {
      throw new Error(`control socket ${opts.path}: exists and is not a socket; not replacing it`);
    }
    await Deno.remove(opts.path); // left over from a process that is gone
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const startedAt = new Date();
  const listen = (handler: Deno.ServeHandler) => {
    try {
      return Deno.serve({ path: opts.path, onListen: () => {} }, handler);
    } catch (e) {
      throw new Error(`control socket ${opts.path}: cannot listen: ${(e as Error).message}`);
    }
  };
  const server = listen(async (req) => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname}`;
    try {
      switch (route) {
        case "POST /sync": {
          const b = await body(req);
          const r = await within(b.timeout, `sync ${b.path}`, set.sync(b.path, b.wait));
          return json(200, {
            // with wait: every replica has everything committed before the request
            status: b.wait ? "synced" : r.changed ? "synced_local" : "no_change",
            path: b.path,
            txid: formatTXID(r.txid),
            replicated_txid: r.replicatedTXID === null ? null : formatTXID(r.replicatedTXID),
          });
        }
        case "POST /start": {
          const b = await body(req);
          const status = await within(b.timeout, `start ${b.path}`, set.start(b.path));
          return json(200, { status, path: b.path, txid: txidOf(set, b.path) });
        }
        case "POST /stop": {
          const b = await body(req);
          const status = await within(b.timeout, `stop ${b.path}`, set.stop(b.path));
          return json(200, { status, path: b.path, txid: txidOf(set, b.path) });
        }
        case "GET /status": {
          const p = url.searchParams.get("path") ?? undefined;
          if (p !== undefined && !set.has(p)) throw new DbNotFoundError(p);
          return json(200, await liveStatus(set, p));
        }
        case "GET /list":
          return json(200, {
            databases: set.list().map((d) => {
              const at = d.replication?.replicators.map((r) => r.lastSyncAt?.getTime() ?? 0)
                .reduce((a, b) => Math.max(a, b), 0);
              return {
                path: d.path,
                status: d.state,
                ...(at ? { last_sync_at: new Date(at).toISOString() } : {}),
              };
            }),
          });
        case "GET /txid": {
          const p = url.searchParams.get("path") ?? "";
          if (!set.has(p)) throw new DbNotFoundError(p);
          return json(200, { path: p, txid: txidOf(set, p) });
        }
        case "POST /register": {
          const b = await body(req);
          const replica = b.replica;
          if (!replica) throw new BadRequest("replica required (a replica URL)");
          if (!opts.register) throw new BadRequest("this process does not take new databases");
          if (set.has(b.path)) {
            return json(200, { status: "already_registered", path: b.path, replica });
          }
          await within(b.timeout, `register ${b.path}`, opts.register(b.path, replica));
          return json(200, {
            status: "registered",
            path: b.path,
            replica,
            txid: txidOf(set, b.path),
          });
        }
        case "POST /unregister": {
          const b = await body(req);
          if (!set.has(b.path)) {
            return json(200, { status: "already_unregistered", path: b.path });
          }
          const txid = txidOf(set, b.path);
          await within(b.timeout, `unregister ${b.path}`, set.remove(b.path));
          return json(200, { status: "unregistered", path: b.path, final_txid: txid });
        }
        case "GET /info":
          return json(200, {
            version: VERSION,
            pid: Deno.pid,
            started_at: startedAt.toISOString(),
            uptime_seconds: Math.floor((Date.now() - startedAt.getTime()) / 1000),
            database_count: set.list().length,
          });
        default:
          return json(404, { error: `no such endpoint: ${route}` });
      }
    } catch (e) {
      if (e instanceof BadRequest) return json(400, { error: e.message });
      return errorResponse(e);
    }
  });
  await Deno.chmod(opts.path, opts.permissions);
  log("info", "control socket listening", { path: opts.path });
  return {
    path: opts.path,
    close: async () => {
      await server.shutdown();
      await Deno.remove(opts.path).catch(() => {});
    },
  };
}

/** A request to the control socket at `socketPath`; the parsed JSON answer, or an error. */
export async function controlRequest(
  socketPath: string,
  method: "GET" | "POST",
  path: string,
  payload?: unknown,
  timeoutSeconds = 30,
): Promise<unknown> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socketPath } });
  try {
    let res: Response;
    try {
      res = await fetch(`http://localhost${path}`, {
        client,
        method,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        headers: payload === undefined ? undefined : { "content-type": "application/json" },
        signal: AbortSignal.timeout((timeoutSeconds + 5) * 1000),
      });
    } catch (e) {
      throw new Error(
        `cannot reach the control socket ${socketPath} (is strata replicate running with socket.enabled?): ${
          (e as Error).message
        }`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`control socket ${socketPath}: HTTP ${res.status}: ${text.trim()}`);
    }
    if (!res.ok) {
      const msg = (parsed as { error?: string }).error ?? text.trim();
      throw new Error(msg);
    }
    return parsed;
  } finally {
    client.close();
  }
}

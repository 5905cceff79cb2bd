/**
 * Prometheus metrics (`addr:` in the config, served at `/metrics`) with
 * Litestream's metric names where Litestream has the metric, so existing
 * dashboards keep working, plus strata's own per-replica gauges (TXID, lag,
 * divergence, error). Values are read from the running replications when
 * scraped; replica operations are counted by wrapping each replica client.
 */

import client from "prom-client";
import { type ReplicaClient, replicaName } from "../storage/mod.ts";
import type { DbReplication } from "../replicate/mod.ts";
import { log } from "../log.ts";

type Labels = Record<string, string>;
type Sample = [Labels, number];

/** Where the running replications come from (read at each scrape). */
export type ReplicationSource = () => DbReplication[];

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size; // a stat opens no descriptor: safe on a live database
  } catch {
    return 0;
  }
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly #ops: client.Counter<string>;
  readonly #opBytes: client.Counter<string>;
  readonly #opSeconds: client.Histogram<string>;
  readonly #opErrors: client.Counter<string>;

  /**
   * `source` gives the running replications; `states`, when given, every
   * database this process manages and its state (`strata_db_replicating`).
   */
  constructor(source: ReplicationSource, states?: () => { path: string; state: string }[]) {
    const reg = [this.registry];
    const perDb = (read: (r: DbReplication) => number): () => Sample[] => () =>
      source().map((r) => [{ db: r.monitor.dbPath }, read(r)]);
    const perMode = (read: (r: DbReplication) => Record<string, number>): () => Sample[] => () =>
      source().flatMap((r) =>
        Object.entries(read(r)).map(([mode, v]): Sample => [{ db: r.monitor.dbPath, mode }, v])
      );
    const gauge = (name: string, help: string, labelNames: string[], read: () => Sample[]) =>
      new client.Gauge({
        name,
        help,
        labelNames,
        registers: reg,
        collect() {
          this.reset();
          for (const [l, v] of read()) this.set(l, v);
        },
      });
    const counter = (name: string, help: string, labelNames: string[], read: () => Sample[]) =>
      new client.Counter({
        name,
        help,
        labelNames,
        registers: reg,
        collect() {
          this.reset();
          for (const [l, v] of read()) this.inc(l, v);
        },
      });

    // Litestream's names (db.go)
    gauge(
      "litestream_db_size",
      "The current size of the database file",
      ["db"],
      () => source().map((r) => [{ db: r.monitor.dbPath }, fileSize(r.monitor.dbPath)]),
    );
    gauge(
      "litestream_wal_size",
      "The current size of the WAL file",
      ["db"],
      () => source().map((r) => [{ db: r.monitor.dbPath }, fileSize(r.monitor.dbPath + "-wal")]),
    );
    const dbCounters: [
      string,
      string,
      "walBytes" | "captures" | "captureErrors" | "captureSeconds",
    ][] = [
      [
        "litestream_total_wal_bytes",
        "Total number of WAL bytes captured into LTX files",
        "walBytes",
      ],
      ["litestream_sync_count", "Number of sync operations performed (WAL captures)", "captures"],
      ["litestream_sync_error_count", "Number of sync errors that have occurred", "captureErrors"],
      ["litestream_sync_seconds", "Time spent capturing the WAL, in seconds", "captureSeconds"],
    ];
    for (const [name, help, key] of dbCounters) {
      counter(name, help, ["db"], perDb((r) => r.monitor.stats[key]));
    }
    gauge(
      "litestream_disk_full",
      "Whether captures are failing because the local disk is full (1) or not (0)",
      ["db"],
      perDb((r) => r.monitor.stats.diskFull),
    );
    counter(
      "litestream_compaction_verify_error_count",
      "Compactions refused because an input or the output failed its checks",
      ["db"],
      perDb((r) => r.compactors.reduce((n, c) => n + c.verifyErrors, 0)),
    );
    gauge(
      "litestream_txid",
      "The current transaction ID (captured locally)",
      ["db"],
      perDb((r) => Number(r.monitor.position.txid)),
    );
    const modeCounters: [
      string,
      string,
      "checkpoints" | "checkpointErrors" | "checkpointSeconds",
    ][] = [
      ["litestream_checkpoint_count", "Number of checkpoint operations performed", "checkpoints"],
      [
        "litestream_checkpoint_error_count",
        "Number of checkpoint errors that have occurred",
        "checkpointErrors",
      ],
      [
        "litestream_checkpoint_seconds",
        "Time spent checkpointing the WAL, in seconds",
        "checkpointSeconds",
      ],
    ];
    for (const [name, help, key] of modeCounters) {
      counter(name, help, ["db", "mode"], perMode((r) => r.monitor.stats[key]));
    }

    // Litestream's replica operation metrics (internal.go), by replica type and operation
    const opLabels = ["replica_type", "operation"];
    this.#ops = new client.Counter({
      name: "litestream_replica_operation_total",
      help: "The number of replica operations performed",
      labelNames: opLabels,
      registers: reg,
    });
    this.#opBytes = new client.Counter({
      name: "litestream_replica_operation_bytes",
      help: "The number of bytes used by replica operations",
      labelNames: opLabels,
      registers: reg,
    });
    this.#opSeconds = new client.Histogram({
      name: "litestream_replica_operation_duration_seconds",
      help: "Duration of replica operations by type and operation",
      labelNames: opLabels,
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers: reg,
    });
    this.#opErrors = new client.Counter({
      name: "litestream_replica_operation_errors_total",
      help: "Number of replica operation errors by type, operation, and error code",
      labelNames: [...opLabels, "code"],
      registers: reg,
    });

    // strata's own, per database and replica
    const perReplica = () =>
      source().flatMap((r) =>
        r.replicators.map((rep) => ({
          labels: { db: r.monitor.dbPath, replica: replicaName(rep.client) },
          rep,
        }))
      );
    gauge(
      "strata_replica_txid",
      "The newest TXID the replica has (0 until listed)",
      ["db", "replica"],
      () => perReplica().map(({ labels, rep }) => [labels, Number(rep.replicaTXID ?? 0n)]),
    );
    new client.Gauge({
      name: "strata_replica_lag_seconds",
      help:
        "Replication lag: how long the oldest captured change the replica does not have has waited (0 when current)",
      labelNames: ["db", "replica"],
      registers: reg,
      async collect() {
        this.reset();
        const now = Date.now();
        for (const { labels, rep } of perReplica()) {
          this.set(labels, (await rep.lagMs(now).catch(() => 0)) / 1000);
        }
      },
    });
    gauge(
      "strata_replica_divergence",
      "1 when the replica does not continue the local history (divergence detected), else 0",
      ["db", "replica"],
      () => perReplica().map(({ labels, rep }) => [labels, rep.divergence ? 1 : 0]),
    );
    gauge(
      "strata_replica_error",
      "1 when the replica's last sync failed, else 0",
      ["db", "replica"],
      () => perReplica().map(({ labels, rep }) => [labels, rep.lastError ? 1 : 0]),
    );
    gauge(
      "strata_replica_last_sync_timestamp_seconds",
      "When the replica last caught up with the local position (Unix time)",
      ["db", "replica"],
      () =>
        perReplica().flatMap(({ labels, rep }): Sample[] =>
          rep.lastSyncAt ? [[labels, rep.lastSyncAt.getTime() / 1000]] : []
        ),
    );
    if (states) {
      gauge(
        "strata_db_replicating",
        "1 while the database is being replicated; 0 when stopped (strata stop), starting or failed",
        ["db"],
        () => states().map((d): Sample => [{ db: d.path }, d.state === "replicating" ? 1 : 0]),
      );
    }
  }

  readonly #perReplica = new Map<string, { requests: number; errors: number }>();

  /** Requests and errors of one replica (`type:location`) since start. */
  opsOf(replica: string): { requests: number; errors: number } {
    return { ...(this.#perReplica.get(replica) ?? { requests: 0, errors: 0 }) };
  }

  /** `client`, with its operations (LIST, GET, PUT, DELETE) counted, timed and sized. */
  instrument(c: ReplicaClient): ReplicaClient {
    const type = c.type;
    const mine = { requests: 0, errors: 0 };
    this.#perReplica.set(replicaName(c), mine);
    const timed = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
      const end = this.#opSeconds.startTimer({ replica_type: type, operation: op });
      this.#ops.inc({ replica_type: type, operation: op });
      mine.requests++;
      try {
        return await fn();
      } catch (e) {
        const code = String((e as { code?: unknown }).code ?? (e as Error).name ?? "Error");
        this.#opErrors.inc({ replica_type: type, operation: op, code });
        mine.errors++;
        throw e;
      } finally {
        end();
      }
    };
    const bytes = (op: string, n: number) =>
      this.#opBytes.inc({ replica_type: type, operation: op }, n);
    const wrapped: Partial<ReplicaClient> = {
      listFiles: (level, seek) => timed("LIST", () => c.listFiles(level, seek)),
      openFile: (level, min, max, range) =>
        timed("GET", async () => {
          const stream = await c.openFile(level, min, max, range);
          return stream.pipeThrough(
            new TransformStream<Uint8Array, Uint8Array>({
              transform(chunk, ctl) {
                bytes("GET", chunk.byteLength);
                ctl.enqueue(chunk);
              },
            }),
          );
        }),
      writeFile: (level, min, max, data, createdAt) =>
        timed("PUT", async () => {
          const f = await c.writeFile(level, min, max, data, createdAt);
          bytes("PUT", f.size);
          return f;
        }),
      deleteFiles: (files) =>
        files.length === 0 ? c.deleteFiles(files) : timed("DELETE", async () => {
          await c.deleteFiles(files);
          if (files.length > 1) {
            this.#ops.inc({ replica_type: type, operation: "DELETE" }, files.length - 1);
          }
        }),
    };
    // everything else (type, location, extra methods) from the client itself
    return new Proxy(c, {
      get(target, prop) {
        if (prop in wrapped) return wrapped[prop as keyof ReplicaClient];
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  async text(): Promise<string> {
    return await this.registry.metrics();
  }
}

/** `host:port` or `:port` (every interface) to Deno.serve's options. */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new Error(`bad metrics address ${JSON.stringify(addr)} (want host:port or :port)`);
  const host = m[1].replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port: Number(m[2]) };
}

export interface MetricsServer {
  /** The bound address (the port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  close(): Promise<void>;
}

/**
 * Serves `metrics` at `http://addr/metrics`, and with `page` (web.ts) the
 * web page and its data at `/`, `/assets/…` and `/api/…`.
 */
export function serveMetrics(
  metrics: Metrics,
  addr: string,
  page?: (req: Request) => Promise<Response | null>,
): MetricsServer {
  const { hostname, port } = parseAddr(addr);
  const listen = (handler: Deno.ServeHandler) => {
    try {
      return Deno.serve({ hostname, port, onListen: () => {} }, handler);
    } catch (e) {
      throw new Error(`metrics address ${addr}: cannot listen: ${(e as Error).message}`);
    }
  };
  const server = listen(async (req) => {
    const path = new URL(req.url).pathname;
    if (path !== "/metrics") {
      const shown = page
        ? await page(req).catch((e) => {
          log("error", "web page request failed", { path, error: e });
          return new Response("internal error\n", { status: 500 });
        })
        : null;
      return shown ?? new Response("not found\n", { status: 404 });
    }
    try {
      return new Response(await metrics.text(), {
        headers: { "content-type": metrics.registry.contentType },
      });
    } catch (e) {
      log("error", "metrics collection failed", { error: e });
      return new Response(`metrics failed: ${(e as Error).message}\n`, { status: 500 });
    }
  });
  const bound = server.addr as Deno.NetAddr;
  log("info", "serving metrics", { url: `http://${bound.hostname}:${bound.port}/metrics` });
  if (page) log("info", "serving the web page", { url: `http://${bound.hostname}:${bound.port}/` });
  return {
    addr: bound,
    close: async () => {
      await server.shutdown();
    },
  };
}

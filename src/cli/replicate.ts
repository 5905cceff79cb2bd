/** `strata replicate`: continuous replication of the configured databases. */

import { resolve } from "node:path";
import { DEFAULTS, parseReplicaUrl } from "../config/mod.ts";
import { DbReplication, DEFAULT_COMPACTION } from "../replicate/mod.ts";
import { log } from "../log.ts";
import { branchAwareClientFor, CONFIG_FLAGS, parse, readConfig, wantsHelp } from "./common.ts";
import type { FlagSpecs } from "./flags.ts";
import { UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  "new-lineage": {
    type: "bool",
    help: "on divergence, continue with a fresh snapshot past the replica's newest TXID",
  },
};
const USAGE = `Usage:
  strata replicate [-config PATH]
  strata replicate DB_PATH REPLICA_URL [REPLICA_URL...]

Replicates each database continuously until SIGINT or SIGTERM; on stop it
captures and uploads everything committed before exiting.

A replica whose newest TXID and checksum are not a point of the local history
has diverged: strata stops uploading to it (nothing in it is deleted) until it
is restarted with -new-lineage, which continues with a full copy numbered past
the replica's newest TXID and a fresh snapshot.`;

export async function runReplicate(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  let dbs;
  let compaction = DEFAULT_COMPACTION;
  if (flags.args.length > 0) {
    if (flags.strings.has("config")) {
      throw new UsageError("give either -config or DB_PATH REPLICA_URL, not both");
    }
    if (flags.args.length < 2) throw new UsageError("need DB_PATH and at least one REPLICA_URL");
    const [dbPath, ...urls] = flags.args;
    dbs = [{
      path: resolve(dbPath),
      metaPath: undefined,
      ...DEFAULTS,
      replicas: urls.map((u) => ({
        ...parseReplicaUrl(u),
        syncIntervalMs: DEFAULTS.syncIntervalMs,
      })),
    }];
  } else {
    const cfg = await readConfig(flags, true);
    dbs = cfg!.dbs;
    compaction = cfg!.compaction;
  }
  const runs = dbs.map((db) =>
    new DbReplication({
      dbPath: resolve(db.path),
      metaPath: db.metaPath,
      monitorIntervalMs: db.monitorIntervalMs,
      checkpointIntervalMs: db.checkpointIntervalMs,
      minCheckpointPageCount: db.minCheckpointPageCount,
      truncatePageN: db.truncatePageN,
      busyTimeoutMs: db.busyTimeoutMs,
      replicas: db.replicas.map((r) => ({
        client: branchAwareClientFor(r),
        syncIntervalMs: r.syncIntervalMs ?? DEFAULTS.syncIntervalMs,
      })),
      compaction,
      newLineage: flags.bools.has("new-lineage"),
    })
  );
  const started: DbReplication[] = [];
  try {
    for (const r of runs) {
      await r.start();
      started.push(r);
    }
  } catch (e) {
    await Promise.allSettled(started.map((r) => r.stop()));
    throw e;
  }
  const stop = Promise.withResolvers<string>();
  const onSignal = (sig: string) => () => stop.resolve(sig);
  const sigint = onSignal("SIGINT");
  const sigterm = onSignal("SIGTERM");
  Deno.addSignalListener("SIGINT", sigint);
  Deno.addSignalListener("SIGTERM", sigterm);
  const sig = await stop.promise;
  Deno.removeSignalListener("SIGINT", sigint);
  Deno.removeSignalListener("SIGTERM", sigterm);
  log("info", "signal received, syncing before exit", { signal: sig });
  const results = await Promise.allSettled(started.map((r) => r.stop()));
  return results.some((r) => r.status === "rejected") ? 1 : 0;
}

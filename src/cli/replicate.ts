/** `strata replicate`: continuous replication of the configured databases. */

import { resolve } from "node:path";
import {
  canonicalPath,
  type Config,
  type DbConfig,
  DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS,
  DEFAULT_SOCKET_PATH,
  defaultMonitorInterval,
  DEFAULTS,
  type DirConfig,
  dirEntryConfig,
  DURATION_LIMITS,
  findOverlap,
  globToRegExp,
  parseReplicaUrl,
} from "../config/mod.ts";
import { allBackedUp, Heartbeat } from "../replicate/heartbeat.ts";
import {
  DbReplication,
  DbSet,
  DEFAULT_COMPACTION,
  type DirectoryWatcher,
  findDatabases,
  watchDirectory,
} from "../replicate/mod.ts";
import { LagHistory, webHandler } from "../server/web.ts";
import {
  type ControlServer,
  Metrics,
  type MetricsServer,
  serveControl,
  serveMetrics,
} from "../server/mod.ts";
import { configureLogging, log, overrideLogLevel, parseLogLevel } from "../log.ts";
import {
  branchAwareClientFor,
  CONFIG_FLAGS,
  durationFlag,
  parse,
  readConfig,
  wantsHelp,
} from "./common.ts";
import { listenForShutdown, onSignals, runChild } from "./exec.ts";
import type { FlagSpecs } from "./flags.ts";
import { UsageError } from "./flags.ts";
import { setProgressDisplay } from "../progress.ts";
import { progressDisplay } from "./progress.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  "new-lineage": {
    type: "bool",
    help: "on divergence, continue with a fresh snapshot past the replica's newest TXID",
  },
  exec: {
    type: "string",
    value: "CMD",
    help: "run CMD as a child; strata exits with its exit code after a final sync",
  },
  "shutdown-sync-timeout": {
    type: "string",
    value: "DURATION",
    help:
      "longest wait for the final sync at stop (default 10s; overrides the config); a replica left without every commit makes the exit non-zero",
  },
  "log-level": {
    type: "string",
    value: "LEVEL",
    help: "debug, info, warn or error (overrides LOG_LEVEL and the config file)",
  },
  "restore-if-db-not-exists": {
    type: "bool",
    help: "before replicating a database that does not exist, restore it from its first replica",
  },
  once: {
    type: "bool",
    help: "capture and upload what is committed, then exit (no -exec)",
  },
  "force-snapshot": {
    type: "bool",
    help: "with -once: upload a snapshot of every database to every replica too",
  },
  "enforce-retention": {
    type: "bool",
    help: "with -once: delete what retention allows from every replica too",
  },
};
const USAGE = `Usage:
  strata replicate [-config PATH] [-new-lineage] [-exec CMD] [-log-level LEVEL]
                   [-shutdown-sync-timeout DURATION] [-restore-if-db-not-exists]
                   [-once [-force-snapshot] [-enforce-retention]]
  strata replicate [-new-lineage] [-exec CMD] [-log-level LEVEL] [-shutdown-sync-timeout DURATION]
                   DB_PATH REPLICA_URL [REPLICA_URL...]

Replicates each database continuously until SIGINT or SIGTERM; on stop it
captures and uploads everything committed before exiting. With -exec (or
exec: in the config) it runs the app as a child process, forwards signals to
it, and when the child exits does a final sync and exits with its code. The
final sync may take up to shutdown-sync-timeout (default 10s); when a replica
did not receive every committed transaction by then (unreachable, read-only,
too slow), the log names it and the TXIDs it lacks and the exit code is 1.

With -once it captures and uploads what is committed and exits (the same final
sync and exit code), after a snapshot of each database with -force-snapshot and
after deleting what retention allows with -enforce-retention.
-restore-if-db-not-exists (or restore-if-db-not-exists: true on a dbs entry)
restores a database that does not exist from its first replica before
replicating it; a replica with no backup leaves it to be created by the app.

A replica whose newest TXID and checksum are not a point of the local history
has diverged: strata stops uploading to it (nothing in it is deleted) until it
is restarted with -new-lineage, which continues with a full copy numbered past
the replica's newest TXID and a fresh snapshot.`;

type Settings =
  & Pick<
    Config,
    "dbs" | "dirs" | "compaction" | "addr" | "exec" | "socket" | "shutdownSyncTimeoutMs"
  >
  & Partial<Pick<Config, "logging" | "heartbeat">>;

/** -shutdown-sync-timeout, else the config's, else the default (validated). */
function shutdownSyncTimeoutFrom(flags: ReturnType<typeof parse>, cfg: Settings): number {
  return durationFlag(flags, "shutdown-sync-timeout", DURATION_LIMITS["shutdown-sync-timeout"]) ??
    cfg.shutdownSyncTimeoutMs ?? DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS;
}

function settingsFrom(flags: ReturnType<typeof parse>): Promise<Settings> | Settings {
  if (flags.args.length === 0) return readConfig(flags, true).then((c) => c!);
  if (flags.strings.has("config")) {
    throw new UsageError("give either -config or DB_PATH REPLICA_URL, not both");
  }
  if (flags.args.length < 2) throw new UsageError("need DB_PATH and at least one REPLICA_URL");
  const [dbPath, ...urls] = flags.args;
  const replicas = urls.map((u) => ({
    ...parseReplicaUrl(u),
    syncIntervalMs: DEFAULTS.syncIntervalMs,
  }));
  const overlap = findOverlap([{
    path: canonicalPath(dbPath),
    replicas: replicas.map((replica) => ({ replica })),
  }]);
  if (overlap) throw new UsageError(overlap.message);
  return {
    dbs: [{
      path: resolve(dbPath),
      metaPath: undefined,
      ...DEFAULTS,
      monitorIntervalMs: defaultMonitorInterval(replicas),
      replicas,
    }],
    dirs: [],
    compaction: DEFAULT_COMPACTION,
    socket: { enabled: false, path: DEFAULT_SOCKET_PATH, permissions: 0o600 },
  };
}

export async function runReplicate(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  setProgressDisplay(progressDisplay); // snapshot uploads: a bar on a terminal, else log lines
  const levelFlag = flags.strings.get("log-level");
  if (levelFlag !== undefined) {
    const level = parseLogLevel(levelFlag);
    if (!level) throw new UsageError(`-log-level must be debug, info, warn or error`);
    overrideLogLevel(level);
  }
  const once = flags.bools.has("once");
  for (const f of ["force-snapshot", "enforce-retention"]) {
    if (flags.bools.has(f) && !once) throw new UsageError(`-${f} goes with -once`);
  }
  if (once && flags.strings.has("exec")) throw new UsageError("-once and -exec do not go together");
  const cfg = await settingsFrom(flags);
  configureLogging({ stderr: cfg.logging?.stderr });
  const exec = once ? undefined : flags.strings.get("exec") ?? cfg.exec;
  const shutdownSyncTimeoutMs = shutdownSyncTimeoutFrom(flags, cfg);

  const set = new DbSet();
  const heartbeat = cfg.heartbeat
    ? new Heartbeat(
      cfg.heartbeat.url,
      cfg.heartbeat.intervalMs,
      () => allBackedUp(set.running(), cfg.heartbeat!.intervalMs),
    )
    : null;
  const metrics = cfg.addr ? new Metrics(() => set.running(), () => set.list()) : null;
  const replication = (db: DbConfig) => () =>
    new DbReplication({
      dbPath: resolve(db.path),
      metaPath: db.metaPath,
      monitorIntervalMs: db.monitorIntervalMs,
      checkpointIntervalMs: db.checkpointIntervalMs,
      minCheckpointPageCount: db.minCheckpointPageCount,
      maxPendingFiles: (db as { maxPendingFiles?: number }).maxPendingFiles,
      truncatePageN: db.truncatePageN,
      busyTimeoutMs: db.busyTimeoutMs,
      replicas: db.replicas.map((r) => ({
        client: branchAwareClientFor(
          r,
          metrics ? (c) => metrics.instrument(c) : undefined,
          cfg.dbs.flatMap((d) => d.replicas),
        ),
        syncIntervalMs: r.syncIntervalMs ?? DEFAULTS.syncIntervalMs,
        validationIntervalMs: r.validationIntervalMs,
      })),
      compaction: cfg.compaction,
      newLineage: flags.bools.has("new-lineage"),
      shutdownSyncTimeoutMs,
    });

  const watchers: DirectoryWatcher[] = [];
  let metricsServer: MetricsServer | null = null;
  let lagHistory: LagHistory | null = null;
  let control: ControlServer | null = null;
  const closeServers = async () => {
    heartbeat?.stop();
    for (const w of watchers) w.close();
    await Promise.allSettled(watchers.map((w) => w.done));
    await control?.close().catch(() => {});
    lagHistory?.stop();
    await metricsServer?.close().catch(() => {});
  };
  // SIGINT/SIGTERM during start-up: databases still starting (e.g. waiting
  // for a replica's lease) give up without opening anything, those started
  // are stopped cleanly; with -exec, the child is then not started
  const shutdown = listenForShutdown();
  shutdown.signal.then(() => set.abortStarting());
  try {
    if (metrics) {
      // the web page on the same address: commands it shows name the config strata read
      const { defaultConfigPath } = await import("../config/config.ts");
      const configPath = flags.args.length === 0
        ? resolve(flags.strings.get("config") ?? defaultConfigPath())
        : null;
      lagHistory = new LagHistory(set);
      lagHistory.start();
      const page = webHandler(set, lagHistory, (r) => metrics.opsOf(r), { configPath });
      metricsServer = serveMetrics(metrics, cfg.addr!, page);
    }
    heartbeat?.start();
    if (cfg.socket.enabled) {
      // strata register DB_PATH -replica URL: one more database, as the positional form makes it
      const registered: DbConfig[] = [];
      const register = async (dbPath: string, url: string) => {
        const replicas = [{ ...parseReplicaUrl(url), syncIntervalMs: DEFAULTS.syncIntervalMs }];
        const db: DbConfig = {
          path: resolve(dbPath),
          ...DEFAULTS,
          monitorIntervalMs: defaultMonitorInterval(replicas),
          replicas,
        };
        const live = [...cfg.dbs, ...registered].filter((d) => set.has(resolve(d.path)));
        const overlap = findOverlap([...live, db].map((d) => ({
          path: canonicalPath(d.path),
          replicas: d.replicas.map((replica) => ({ replica })),
        })));
        if (overlap) throw new Error(overlap.message);
        await set.add(db.path, replication(db));
        registered.push(db);
        log("info", "registered a database through the control socket", {
          db: db.path,
          replica: `${replicas[0].type}`,
          note: "the URL's settings only: the config's top-level replica settings do not apply",
        });
      };
      control = await serveControl(set, { ...cfg.socket, register });
    }
    for (const db of cfg.dbs) {
      if (shutdown.received) break;
      if (flags.bools.has("restore-if-db-not-exists") || db.restoreIfDbNotExists) {
        await restoreIfMissing(db, cfg);
      }
      await set.add(resolve(db.path), replication(db));
    }
    for (const d of cfg.dirs) {
      if (!shutdown.received) watchers.push(...await addDirectory(set, d, replication));
    }
  } catch (e) {
    shutdown.cancel();
    await set.stopAll();
    await closeServers();
    throw e;
  }

  let code = 0;
  if (once && !shutdown.received) {
    shutdown.cancel();
    code = await runOnce(
      set,
      flags.bools.has("force-snapshot"),
      flags.bools.has("enforce-retention"),
    );
  } else if (exec && !shutdown.received) {
    shutdown.cancel(); // the child gets the signals from here on
    try {
      code = await runChild(exec);
    } catch (e) {
      log("error", "exec failed", { error: e });
      code = 1;
    }
    log("info", "child exited, syncing before exit", { code });
  } else {
    const sig = await shutdown.signal;
    log("info", "signal received, syncing before exit", { signal: sig });
    if (exec) code = sig === "SIGINT" ? 130 : 143; // the child never ran: as if the signal ended it
  }
  // a second signal while the final sync runs: give up at once
  const hurry = () => {
    log("error", "second signal during the final sync: exiting without finishing it");
    Deno.exit(code || 1);
  };
  const stopHurry = onSignals(["SIGINT", "SIGTERM"], hurry);
  try {
    for (const w of watchers) w.close();
    const ok = await set.stopAll();
    await closeServers();
    if (!ok && code === 0) code = 1;
  } finally {
    stopHurry();
  }
  return code;
}

/**
 * Replicates the databases under `d.dir`; with `watch`, also those that
 * appear later (and stops those removed). Returns the watcher, if any.
 */
async function addDirectory(
  set: DbSet,
  d: DirConfig,
  replication: (db: DbConfig) => () => DbReplication,
): Promise<DirectoryWatcher[]> {
  const dir = resolve(d.dir);
  const opts = {
    dir,
    pattern: globToRegExp(d.pattern),
    recursive: d.recursive,
    skip: (p: string) => set.has(p),
  };
  const entry = { ...d, dir };
  if (!d.watch) {
    const found = await findDatabases(opts);
    if (found.length === 0) {
      throw new Error(`no SQLite databases in directory ${dir} match pattern ${d.pattern}`);
    }
    for (const p of found) await set.add(p, replication(dirEntryConfig(entry, p)));
    return [];
  }
  const watcher = watchDirectory({
    ...opts,
    onFound: async (p) => {
      log("info", "directory replication: found a database", { dir, db: p });
      await set.add(p, replication(dirEntryConfig(entry, p)));
    },
    onRemoved: async (p) => {
      log("info", "directory replication: database removed", { dir, db: p });
      await set.remove(p);
    },
  });
  await watcher.ready;
  log("info", "watching directory for databases", { dir, pattern: d.pattern });
  return [watcher];
}

/**
 * `-once`: every database's pending changes are captured and uploaded by the
 * final sync of the stop that follows; before it, a snapshot of each and
 * retention when asked. 1 when any of those failed (logged).
 */
async function runOnce(set: DbSet, snapshot: boolean, retention: boolean): Promise<number> {
  let code = 0;
  for (const db of set.running()) {
    try {
      await db.syncAll();
      if (snapshot) await db.snapshot("-force-snapshot");
      if (retention) {
        for (let k = 0; k < db.replicators.length; k++) await db.enforceRetention(k);
      }
    } catch (e) {
      log("error", "replicate -once failed", { db: db.monitor.dbPath, error: e });
      code = 1;
    }
  }
  log("info", "replicate -once: done, syncing before exit");
  return code;
}

/**
 * Restores `db` from its first replica when the file does not exist (none of
 * its -wal, -shm either: a half-deleted database is not "missing"). A replica
 * without a backup leaves the path to the app.
 */
async function restoreIfMissing(db: DbConfig, cfg: Settings): Promise<void> {
  const path = resolve(db.path);
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (await Deno.lstat(p).then(() => true, () => false)) return;
  }
  const { restoreReplica } = await import("../branch/restore_branch.ts");
  const { RestorePlanError } = await import("../restore/plan.ts");
  const client = branchAwareClientFor(
    db.replicas[0],
    undefined,
    cfg.dbs.flatMap((d) => d.replicas),
  );
  try {
    const r = await restoreReplica(client, {}, path, { integrityCheck: "quick" });
    log("info", "restored the missing database before replicating it", {
      db: path,
      replica: client.location,
      txid: r.txid,
    });
  } catch (e) {
    if (e instanceof RestorePlanError && /has no backup files/.test(e.message)) {
      log("info", "database does not exist and its replica has no backup: starting without one", {
        db: path,
        replica: client.location,
      });
      return;
    }
    throw e;
  }
}

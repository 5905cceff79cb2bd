/** The shape of a parsed configuration (shared by the parser and directory replication). */

import type { LogLevel } from "../log.ts";
import type { CompactionSettings } from "../replicate/compactor.ts";
import type { ReplicaConfig } from "./replica_url.ts";

export interface DbConfig {
  path: string;
  metaPath?: string;
  monitorIntervalMs: number;
  checkpointIntervalMs: number;
  minCheckpointPageCount: number;
  /** Local files not in every replica yet past which the oldest are merged (0: default). */
  maxPendingFiles?: number;
  truncatePageN: number;
  busyTimeoutMs: number;
  replicas: ReplicaConfig[];
  /** Restore the database from its first replica at start when it does not exist. */
  restoreIfDbNotExists?: boolean;
}

/** A `dbs` entry with `dir`: every SQLite database beneath `dir` whose file name matches `pattern`. */
export interface DirConfig extends Omit<DbConfig, "path"> {
  dir: string;
  /** A glob on the file name (`*`, `?`, `[a-z]`), e.g. `*.db`. */
  pattern: string;
  /** Look in subdirectories too. */
  recursive: boolean;
  /** Keep watching the directory for new (and removed) databases. */
  watch: boolean;
}

/** The control socket (`socket:`), as Litestream v0.5's. */
export interface SocketConfig {
  enabled: boolean;
  path: string;
  /** File mode of the socket (default 0600). */
  permissions: number;
}

export const DEFAULT_SOCKET_PATH = "/var/run/strata.sock";

export interface Config {
  dbs: DbConfig[];
  /** `dbs` entries given as a directory (`dir` + `pattern`). */
  dirs: DirConfig[];
  /** `addr`: where Prometheus metrics are served (`host:port`; `:port` for every interface). */
  addr?: string;
  /** `exec`: the app to run as a child process (a command line, split as a shell would). */
  exec?: string;
  socket: SocketConfig;
  /** `stderr: false`: `replicate` logs to stdout (Litestream's default); strata's is stderr. */
  logging: { level?: LogLevel; type?: "text" | "json"; stderr?: boolean };
  /** Levels, snapshots and retention (global, as Litestream v0.5). */
  compaction: CompactionSettings;
  /** `shutdown-sync-timeout`: how long the final sync at stop may take. */
  shutdownSyncTimeoutMs?: number;
  /** `heartbeat-url` and `heartbeat-interval`: a GET while every database is backed up. */
  heartbeat?: { url: string; intervalMs: number };
  /** Keys left out (Litestream keys strata does not act on, unknown keys), each said once. */
  warnings?: string[];
}

/** Default `shutdown-sync-timeout`. */
export const DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS = 10_000;

/**
 * YAML configuration with Litestream's keys. Unknown keys and bad values are
 * errors naming the key and its line; Litestream keys strata does not have
 * yet say so.
 */

import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node as YamlNode,
  parseDocument,
  type YAMLMap,
} from "yaml";
import { parseDuration } from "./duration.ts";
import { globToRegExp } from "./dir_config.ts";
import { parseReplicaUrl, type ReplicaConfig } from "./replica_url.ts";
import { S3_KEYS, s3ReplicaConfig } from "./s3_config.ts";
import { REMOTE_REPLICA_KEYS, remoteReplicaConfig } from "./remote_config.ts";
import { type LogLevel, parseLogLevel } from "../log.ts";
import { type CompactionSettings, DEFAULT_COMPACTION } from "../replicate/compactor.ts";

export class ConfigError extends Error {
  constructor(file: string, message: string, line?: number) {
    super(`config ${file}${line ? `:${line}` : ""}: ${message}`);
    this.name = "ConfigError";
  }
}

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
  logging: { level?: LogLevel; type?: "text" | "json" };
  /** Levels, snapshots and retention (global, as Litestream v0.5). */
  compaction: CompactionSettings;
}

export const DEFAULTS = {
  monitorIntervalMs: 100,
  checkpointIntervalMs: 60_000,
  minCheckpointPageCount: 1000,
  truncatePageN: 121_359,
  busyTimeoutMs: 1000,
  syncIntervalMs: 1000,
};

const NOT_YET = new Set([
  "levels",
  "snapshot",
  "l0-retention",
  "l0-retention-check-interval",
  "retention",
  "mcp-addr",
  "retention-check-interval",
  "age",
]);

/** Expands `$VAR` and `${VAR}` from the environment (unset → empty). */
export function expandEnv(
  text: string,
  env: (k: string) => string | undefined = (k) => Deno.env.get(k),
): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_, a, b) => env(a ?? b) ?? "",
  );
}

class Reader {
  constructor(readonly file: string, readonly lines: LineCounter) {}
  line(node: YamlNode | null | undefined): number | undefined {
    const r = (node as { range?: [number, number, number] } | null)?.range;
    return r ? this.lines.linePos(r[0]).line : undefined;
  }
  fail(node: YamlNode | null | undefined, msg: string): never {
    throw new ConfigError(this.file, msg, this.line(node));
  }
  /** Key/value pairs of a mapping, rejecting keys not in `allowed`. */
  entries(node: YamlNode, where: string, allowed: string[]): Map<string, YamlNode> {
    if (!isMap(node)) this.fail(node, `${where} must be a mapping`);
    const out = new Map<string, YamlNode>();
    for (const pair of (node as YAMLMap).items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : "";
      if (!allowed.includes(k)) {
        if (NOT_YET.has(k)) {
          this.fail(pair.key as YamlNode, `key "${k}" in ${where} is not supported yet by strata`);
        }
        this.fail(pair.key as YamlNode, `unknown key "${k}" in ${where}`);
      }
      out.set(k, pair.value as YamlNode);
    }
    return out;
  }
  string(node: YamlNode | undefined, key: string): string | undefined {
    if (node === undefined || node === null) return undefined;
    if (!isScalar(node) || typeof node.value === "object") {
      this.fail(node, `"${key}" must be a string`);
    }
    return String(node.value);
  }
  duration(node: YamlNode | undefined, key: string, dflt: number): number {
    const s = this.string(node, key);
    if (s === undefined) return dflt;
    const ms = parseDuration(s);
    if (ms === null || ms < 0) {
      this.fail(node, `"${key}": invalid duration ${JSON.stringify(s)} (use e.g. 1s, 100ms, 5m)`);
    }
    return ms;
  }
  int(node: YamlNode | undefined, key: string, dflt: number): number {
    if (node === undefined) return dflt;
    const v = isScalar(node) ? Number(node.value) : NaN;
    if (!Number.isInteger(v) || v < 0) this.fail(node, `"${key}" must be a non-negative integer`);
    return v;
  }
  bool(node: YamlNode | undefined, key: string, dflt: boolean): boolean {
    if (node === undefined || node === null) return dflt;
    if (!isScalar(node) || typeof node.value !== "boolean") {
      this.fail(node, `"${key}" must be true or false`);
    }
    return node.value as boolean;
  }
}

const DB_KEYS = [
  "path",
  "dir",
  "pattern",
  "recursive",
  "watch",
  "meta-path",
  "replica",
  "replicas",
  "monitor-interval",
  "checkpoint-interval",
  "min-checkpoint-page-count",
  "max-pending-files",
  "truncate-page-n",
  "busy-timeout",
];
const REPLICA_KEYS = [
  "type",
  "path",
  "url",
  "name",
  "sync-interval",
  "validation-interval",
  ...REMOTE_REPLICA_KEYS,
  ...S3_KEYS,
];

/** Parses config text (already read from `file`). */
export function parseConfig(
  text: string,
  file: string,
  opts: { expandEnv?: boolean } = {},
): Config {
  const src = opts.expandEnv === false ? text : expandEnv(text);
  const lines = new LineCounter();
  const doc = parseDocument(src, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ConfigError(
      file,
      `malformed YAML: ${e.message.split("\n")[0]}`,
      e.linePos?.[0]?.line,
    );
  }
  const r: Reader = new Reader(file, lines);
  const root = doc.contents as YamlNode | null;
  if (!root) throw new ConfigError(file, "empty configuration: no dbs");
  const top = r.entries(root, "the top level", [
    "dbs",
    "logging",
    "addr",
    "exec",
    "socket",
    ...COMPACTION_KEYS,
  ]);
  const compaction = parseCompaction(r, top);
  const logging: Config["logging"] = {};
  const lg = top.get("logging");
  if (lg) {
    const e = r.entries(lg, "logging", ["level", "type", "stderr"]);
    const level = r.string(e.get("level"), "level");
    if (level !== undefined) {
      const l = parseLogLevel(level);
      if (!l) r.fail(e.get("level"), `"level" must be debug, info, warn or error`);
      logging.level = l;
    }
    const type = r.string(e.get("type"), "type");
    if (type !== undefined) {
      if (type !== "text" && type !== "json") r.fail(e.get("type"), `"type" must be text or json`);
      logging.type = type;
    }
  }
  const dbsNode = top.get("dbs");
  if (!dbsNode || !isSeq(dbsNode) || dbsNode.items.length === 0) {
    r.fail(dbsNode ?? root, '"dbs" must list at least one database');
  }
  const dbs: DbConfig[] = [];
  const dirs: DirConfig[] = [];
  for (const item of dbsNode.items as YamlNode[]) {
    const e = r.entries(item, "a dbs entry", DB_KEYS);
    const dir = r.string(e.get("dir"), "dir");
    const path = r.string(e.get("path"), "path") ?? dir;
    if (e.has("path") && e.has("dir")) {
      r.fail(e.get("dir"), `a dbs entry takes "path" or "dir", not both`);
    }
    if (!path) r.fail(item, `a dbs entry needs "path" (or "dir" and "pattern")`);
    if (dir === undefined) {
      for (const k of ["pattern", "recursive", "watch"]) {
        if (e.has(k)) r.fail(e.get(k), `"${k}" goes with "dir" (directory replication)`);
      }
    } else {
      const pattern = r.string(e.get("pattern"), "pattern");
      if (!pattern) r.fail(item, `directory ${dir} needs "pattern" (e.g. "*.db")`);
      try {
        globToRegExp(pattern);
      } catch (err) {
        r.fail(e.get("pattern"), (err as Error).message);
      }
    }
    const replicaNodes: YamlNode[] = [];
    if (e.has("replica") && e.has("replicas")) {
      r.fail(e.get("replicas"), `use "replica" or "replicas", not both`);
    }
    if (e.has("replica")) replicaNodes.push(e.get("replica")!);
    if (e.has("replicas")) {
      const rs = e.get("replicas")!;
      if (!isSeq(rs)) r.fail(rs, `"replicas" must be a list`);
      replicaNodes.push(...(rs.items as YamlNode[]));
    }
    if (replicaNodes.length === 0) r.fail(item, `database ${path} has no replica`);
    const replicas = replicaNodes.map((n) => {
      const re = r.entries(n, `a replica of ${path}`, REPLICA_KEYS);
      const url = r.string(re.get("url"), "url");
      const rpath = r.string(re.get("path"), "path");
      const type = r.string(re.get("type"), "type");
      const syncIntervalMs = r.duration(
        re.get("sync-interval"),
        "sync-interval",
        DEFAULTS.syncIntervalMs,
      );
      try {
        const cfg = s3ReplicaConfig(url, type, (k) => r.string(re.get(k), k), re.keys()) ??
          remoteReplicaConfig(url, type, (k) => r.string(re.get(k), k)) ??
          (url ? parseReplicaUrl(url) : parseReplicaUrl(rpath ?? "", type ?? "file"));
        if (url && type && type !== cfg.type) {
          r.fail(re.get("type"), `"type" ${type} contradicts url ${url}`);
        }
        const validationIntervalMs = r.duration(
          re.get("validation-interval"),
          "validation-interval",
          0,
        );
        return {
          ...cfg,
          name: r.string(re.get("name"), "name"),
          syncIntervalMs,
          ...(validationIntervalMs > 0 ? { validationIntervalMs } : {}),
        };
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        const key = (err as { key?: unknown }).key;
        r.fail(typeof key === "string" && re.has(key) ? re.get(key) : n, (err as Error).message);
      }
    });
    const settings = {
      metaPath: r.string(e.get("meta-path"), "meta-path"),
      monitorIntervalMs: r.duration(
        e.get("monitor-interval"),
        "monitor-interval",
        DEFAULTS.monitorIntervalMs,
      ),
      checkpointIntervalMs: r.duration(
        e.get("checkpoint-interval"),
        "checkpoint-interval",
        DEFAULTS.checkpointIntervalMs,
      ),
      minCheckpointPageCount: r.int(
        e.get("min-checkpoint-page-count"),
        "min-checkpoint-page-count",
        DEFAULTS.minCheckpointPageCount,
      ),
      maxPendingFiles: r.int(e.get("max-pending-files"), "max-pending-files", 0) || undefined,
      truncatePageN: r.int(e.get("truncate-page-n"), "truncate-page-n", DEFAULTS.truncatePageN),
      busyTimeoutMs: r.duration(e.get("busy-timeout"), "busy-timeout", DEFAULTS.busyTimeoutMs),
      replicas,
    };
    if (dir === undefined) {
      dbs.push({ path, ...settings });
    } else {
      dirs.push({
        dir,
        pattern: r.string(e.get("pattern"), "pattern")!,
        recursive: r.bool(e.get("recursive"), "recursive", false),
        watch: r.bool(e.get("watch"), "watch", false),
        ...settings,
      });
    }
  }
  return { dbs, dirs, logging, compaction, ...parseServing(r, top) };
}

/** `addr`, `exec` and `socket`. */
function parseServing(
  r: Reader,
  top: Map<string, YamlNode>,
): Pick<Config, "addr" | "exec" | "socket"> {
  const addr = r.string(top.get("addr"), "addr");
  if (addr !== undefined && addr !== "") {
    const m = /^(.*):(\d+)$/.exec(addr);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      r.fail(top.get("addr"), `"addr" must be host:port or :port, got ${JSON.stringify(addr)}`);
    }
  }
  const exec = r.string(top.get("exec"), "exec");
  const socket: SocketConfig = { enabled: false, path: DEFAULT_SOCKET_PATH, permissions: 0o600 };
  const sock = top.get("socket");
  if (sock !== undefined && sock !== null) {
    const e = r.entries(sock, "socket", ["enabled", "path", "permissions"]);
    socket.enabled = r.bool(e.get("enabled"), "enabled", false);
    socket.path = r.string(e.get("path"), "path") || DEFAULT_SOCKET_PATH;
    const perms = e.get("permissions");
    if (perms !== undefined && perms !== null) {
      // 0600 is octal, as Litestream (Go's YAML) reads it
      const src = isScalar(perms) ? String(perms.source ?? perms.value) : "";
      const m = /^0o?([0-7]{1,4})$/.exec(src);
      const v = m
        ? parseInt(m[1], 8)
        : isScalar(perms) && typeof perms.value === "number"
        ? perms.value
        : NaN;
      if (!Number.isInteger(v) || v < 0 || v > 0o7777) {
        r.fail(perms, `"permissions" must be a file mode such as 0600`);
      }
      socket.permissions = v;
    }
  }
  return { addr: addr || undefined, exec: exec || undefined, socket };
}

const COMPACTION_KEYS = [
  "levels",
  "snapshot",
  "l0-retention",
  "l0-retention-check-interval",
  "retention",
];

/** `levels`, `snapshot`, `l0-retention`, `l0-retention-check-interval`, `retention`. */
function parseCompaction(r: Reader, top: Map<string, YamlNode>): CompactionSettings {
  const d = DEFAULT_COMPACTION;
  const positive = (node: YamlNode | undefined, key: string, dflt: number) => {
    const ms = r.duration(node, key, dflt);
    if (ms <= 0) r.fail(node, `"${key}" must be a positive duration`);
    return ms;
  };
  let levelIntervalsMs = d.levelIntervalsMs;
  const levels = top.get("levels");
  if (levels !== undefined && levels !== null) {
    if (!isSeq(levels)) r.fail(levels, `"levels" must be a list of {interval: DURATION}`);
    const items = levels.items as YamlNode[];
    if (items.length > 8) r.fail(levels, `"levels" lists ${items.length} levels; at most 8`);
    levelIntervalsMs = items.map((item, i) => {
      const e = r.entries(item, `level ${i + 1}`, ["interval"]);
      if (!e.has("interval")) r.fail(item, `level ${i + 1} needs "interval"`);
      return positive(e.get("interval"), "interval", 0);
    });
    for (let i = 1; i < levelIntervalsMs.length; i++) {
      if (levelIntervalsMs[i] <= levelIntervalsMs[i - 1]) {
        r.fail(items[i], `level ${i + 1}'s interval must be longer than level ${i}'s`);
      }
    }
  }
  let snapshotIntervalMs = d.snapshotIntervalMs;
  let snapshotRetentionMs = d.snapshotRetentionMs;
  const snap = top.get("snapshot");
  if (snap !== undefined && snap !== null) {
    const e = r.entries(snap, "snapshot", ["interval", "retention"]);
    snapshotIntervalMs = positive(e.get("interval"), "interval", d.snapshotIntervalMs);
    snapshotRetentionMs = positive(e.get("retention"), "retention", d.snapshotRetentionMs);
  }
  let retentionEnabled = d.retentionEnabled;
  const ret = top.get("retention");
  if (ret !== undefined && ret !== null) {
    const e = r.entries(ret, "retention", ["enabled"]);
    const v = e.get("enabled");
    if (v !== undefined) {
      if (!isScalar(v) || typeof v.value !== "boolean") {
        r.fail(v, `"enabled" must be true or false`);
      }
      retentionEnabled = v.value as boolean;
    }
  }
  return {
    levelIntervalsMs,
    snapshotIntervalMs,
    snapshotRetentionMs,
    l0RetentionMs: r.duration(top.get("l0-retention"), "l0-retention", d.l0RetentionMs),
    l0RetentionCheckIntervalMs: positive(
      top.get("l0-retention-check-interval"),
      "l0-retention-check-interval",
      d.l0RetentionCheckIntervalMs,
    ),
    retentionEnabled,
  };
}

/** The config path: flag, then $STRATA_CONFIG, then /etc/strata.yml. */
export function defaultConfigPath(): string {
  return Deno.env.get("STRATA_CONFIG") ?? "/etc/strata.yml";
}

export async function loadConfig(
  path: string,
  opts: { expandEnv?: boolean } = {},
): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ConfigError(path, "file not found");
    throw new ConfigError(path, (e as Error).message);
  }
  return parseConfig(text, path, opts);
}

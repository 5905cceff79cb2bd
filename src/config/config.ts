/**
 * YAML configuration with Litestream's keys. Unknown keys and bad values are
 * errors naming the key and its line; Litestream keys strata does not have
 * yet say so.
 */

import { isMap, isScalar, isSeq, LineCounter, type Node as YamlNode, parseDocument } from "yaml";
import { globToRegExp } from "./glob.ts";
import { parseReplicaUrl } from "./replica_url.ts";
import { redactUrl } from "./replica_error.ts";
import { S3_KEYS, s3ReplicaConfig } from "./s3_config.ts";
import { REMOTE_REPLICA_KEYS, remoteReplicaConfig } from "./remote_config.ts";
import { expandEnvInDocument } from "./env.ts";
import { ConfigError, Reader } from "./reader.ts";
import { DURATION_LIMITS as L, INT_LIMITS } from "./limits.ts";
import { formatDuration } from "./duration.ts";
import { COMPACTION_KEYS, parseCompaction } from "./compaction_config.ts";
import { parseServing, SERVING_KEYS } from "./serving_config.ts";
import {
  type Config,
  type DbConfig,
  DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS,
  type DirConfig,
} from "./config_types.ts";
import { canonicalPath, type EntryPlace, findOverlap } from "./overlap.ts";
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from "../replicate/heartbeat.ts";
import type { AgeSettings } from "../storage/age_client.ts";
import { parseLogLevel } from "../log.ts";

export * from "./config_types.ts";
export { ConfigError } from "./reader.ts";
export { expandEnv, UnsetVariableError } from "./env.ts";

/**
 * Capture as often as the most eager replica uploads (a capture is what a
 * sync uploads), at most every DEFAULTS.monitorIntervalMs: captures cost a
 * file write and fsync each, and more of them than syncs buy nothing.
 */
export function defaultMonitorInterval(replicas: { syncIntervalMs?: number }[]): number {
  return Math.min(
    DEFAULTS.monitorIntervalMs,
    ...replicas.map((r) => r.syncIntervalMs ?? DEFAULTS.syncIntervalMs),
  );
}

export const DEFAULTS = {
  /** Litestream's default too; never longer than the db's shortest sync-interval unless set. */
  monitorIntervalMs: 1000,
  checkpointIntervalMs: 60_000,
  minCheckpointPageCount: 1000,
  truncatePageN: 121_359,
  busyTimeoutMs: 1000,
  syncIntervalMs: 1000,
};

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
  "snapshot",
  "restore-if-db-not-exists",
];
/** Replica settings that may also stand at the top level, as every replica's default. */
const REPLICA_DEFAULT_KEYS = [
  "sync-interval",
  "validation-interval",
  "format",
  ...new Set([...REMOTE_REPLICA_KEYS, ...S3_KEYS]),
];
/** `retention` in a replica entry: Litestream v0.3's per-replica snapshot retention. */
const REPLICA_KEYS = ["type", "path", "url", "name", "age", "retention", ...REPLICA_DEFAULT_KEYS];
const TOP_KEYS = [
  "dbs",
  "logging",
  "heartbeat-url",
  "heartbeat-interval",
  "age",
  ...SERVING_KEYS,
  "shutdown-sync-timeout",
  ...COMPACTION_KEYS,
  ...REPLICA_DEFAULT_KEYS,
];

/**
 * Where each key goes, for a key found in the wrong place; keys with more than
 * one home (`path`, `retention`, `snapshot`) are left out: found elsewhere,
 * they are only warned about.
 */
const HOMES: Record<string, string> = (() => {
  const homes = new Map<string, Set<string>>();
  const add = (keys: string[], home: string) => {
    for (const k of keys) homes.set(k, (homes.get(k) ?? new Set()).add(home));
  };
  add(TOP_KEYS.filter((k) => !REPLICA_DEFAULT_KEYS.includes(k)), "the top level");
  add(DB_KEYS, "a dbs entry");
  add(REPLICA_KEYS, "a replica entry (or the top level, as every replica's default)");
  return Object.fromEntries(
    [...homes].filter(([, h]) => h.size === 1).map(([k, h]) => [k, [...h][0]]),
  );
})();

/**
 * A database path as Litestream reads it: `sqlite://` and `sqlite3://`
 * prefixes dropped, a leading `~/` is $HOME.
 */
export function databasePath(p: string): string {
  const bare = p.replace(/^sqlite3?:\/\//i, "");
  if (bare === "~" || bare.startsWith("~/")) {
    const home = Deno.env.get("HOME");
    if (home) return home + bare.slice(1);
  }
  return bare;
}

/** Parses config text (already read from `file`). */
export function parseConfig(
  text: string,
  file: string,
  opts: { expandEnv?: boolean } = {},
): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ConfigError(
      file,
      `malformed YAML: ${e.message.split("\n")[0]}`,
      e.linePos?.[0]?.line,
    );
  }
  const r: Reader = new Reader(file, lines, text);
  r.elsewhere = HOMES;
  if (opts.expandEnv !== false) {
    expandEnvInDocument(doc, (node, key, e) => r.fail(node, `"${key}": ${e.message}`));
  }
  const root = doc.contents as YamlNode | null;
  if (!root) throw new ConfigError(file, "empty configuration: no dbs");
  const top = r.entries(root, "the top level", TOP_KEYS);
  const snapshotFromDb = dbSnapshot(r, root, top);
  const compaction = parseCompaction(r, top, snapshotFromDb);
  // Litestream v0.3's per-replica `retention`: kept as the global snapshot retention (the
  // longest asked), unless a snapshot retention is set; never shortened below what was asked
  const snapshotRetentionSet = hasSnapshotRetention(top.get("snapshot")) ||
    hasSnapshotRetention(snapshotFromDb);
  let v03Retention: { ms: number; node: YamlNode } | null = null;
  const logging: Config["logging"] = {};
  const lg = top.get("logging");
  if (lg) {
    const e = r.entries(lg, "logging", ["level", "type", "stderr"]);
    const level = r.string(e.get("level"), "level");
    if (level !== undefined) {
      const l = parseLogLevel(level);
      if (!l) r.fail(e.get("level"), `"level" must be trace, debug, info, warn or error`);
      logging.level = l;
    }
    const type = r.string(e.get("type"), "type")?.toLowerCase();
    if (type !== undefined) {
      if (type !== "text" && type !== "json" && type !== "pretty") {
        r.fail(e.get("type"), `"type" must be text, json or pretty`);
      }
      logging.type = type === "json" ? "json" : "text"; // pretty: Litestream's coloured text
    }
    if (e.has("stderr")) logging.stderr = r.bool(e.get("stderr"), "stderr", true);
  }
  const serving = parseServing(r, top);
  const dbsNode = top.get("dbs");
  const noDbs = !dbsNode || (isSeq(dbsNode) && dbsNode.items.length === 0);
  // databases may all come later through the control socket (strata register)
  if ((noDbs && !serving.socket.enabled) || (dbsNode && !isSeq(dbsNode))) {
    r.fail(
      dbsNode ?? root,
      '"dbs" must list at least one database (or socket.enabled, for strata register)',
    );
  }
  const dbs: DbConfig[] = [];
  const dirs: DirConfig[] = [];
  const places: EntryPlace[] = [];
  const dbItems = dbsNode && isSeq(dbsNode) ? dbsNode.items as YamlNode[] : [];
  for (const item of dbItems) {
    const e = r.entries(item, "a dbs entry", DB_KEYS);
    const rawDir = r.string(e.get("dir"), "dir");
    const dir = rawDir === undefined ? undefined : databasePath(rawDir);
    const rawPath = r.string(e.get("path"), "path");
    const path = rawPath === undefined ? dir : databasePath(rawPath);
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
      const own = r.entries(n, `a replica of ${path}`, REPLICA_KEYS);
      // the top level's replica settings are every replica's defaults (Litestream's too)
      const re = new Map(own);
      for (const k of REPLICA_DEFAULT_KEYS) if (!re.has(k) && top.has(k)) re.set(k, top.get(k)!);
      const url = r.string(re.get("url"), "url");
      const rpath = r.string(re.get("path"), "path");
      // "gcs" is Litestream v0.3's name for Google Cloud Storage (v0.5: "gs")
      const rawType = r.string(re.get("type"), "type");
      const type = rawType === "gcs" ? "gs" : rawType;
      const syncIntervalMs = r.duration(
        re.get("sync-interval"),
        "sync-interval",
        DEFAULTS.syncIntervalMs,
        L["sync-interval"],
      );
      try {
        const cfg = s3ReplicaConfig(url, type, (k) => r.string(re.get(k), k), own.keys()) ??
          remoteReplicaConfig(url, type, (k) => r.string(re.get(k), k)) ??
          (url ? parseReplicaUrl(url) : parseReplicaUrl(rpath ?? "", type ?? "file"));
        const scheme = url ? /^([a-z0-9+.-]+):/i.exec(url)?.[1]?.toLowerCase() : undefined;
        if (url && type && type !== cfg.type && type !== scheme) {
          r.fail(re.get("type"), `"type" ${type} contradicts url ${redactUrl(url)}`);
        }
        const validationIntervalMs = r.duration(
          re.get("validation-interval"),
          "validation-interval",
          0,
          L["validation-interval"],
        );
        const sse = [...re.keys()].find((k) => k.startsWith("sse-"));
        if (sse && cfg.type !== "s3") {
          r.fail(
            re.get(sse),
            `"${sse}" applies to s3 replicas only: refused rather than upload to ${cfg.type} without the encryption asked for`,
          );
        }
        const retNode = own.get("retention");
        if (retNode !== undefined && retNode !== null) {
          const ms = r.duration(retNode, "retention", 0, L["snapshot retention"]);
          if (!v03Retention || ms > v03Retention.ms) v03Retention = { ms, node: retNode };
        }
        const ageNode = own.get("age") ?? top.get("age");
        const age = ageNode === undefined || ageNode === null ? undefined : parseAge(r, ageNode);
        const format = r.string(re.get("format"), "format");
        if (format !== undefined && format !== "strata" && format !== "litestream") {
          r.fail(
            re.get("format"),
            `"format" must be strata or litestream, got ${JSON.stringify(format)}`,
          );
        }
        if (age && format === "litestream") {
          r.fail(
            ageNode,
            `"age" and "format: litestream" exclude each other: Litestream v0.5 reads no encrypted replica`,
          );
        }
        return {
          ...cfg,
          ...(age ? { age } : {}),
          ...(format === "litestream" ? { format: "litestream" as const } : {}),
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
        defaultMonitorInterval(replicas),
        L["monitor-interval"],
      ),
      checkpointIntervalMs: r.duration(
        e.get("checkpoint-interval"),
        "checkpoint-interval",
        DEFAULTS.checkpointIntervalMs,
        L["checkpoint-interval"],
      ),
      minCheckpointPageCount: r.int(
        e.get("min-checkpoint-page-count"),
        "min-checkpoint-page-count",
        DEFAULTS.minCheckpointPageCount,
        INT_LIMITS["min-checkpoint-page-count"],
      ),
      maxPendingFiles: r.int(
        e.get("max-pending-files"),
        "max-pending-files",
        0,
        INT_LIMITS["max-pending-files"],
      ) || undefined,
      truncatePageN: r.int(
        e.get("truncate-page-n"),
        "truncate-page-n",
        DEFAULTS.truncatePageN,
        INT_LIMITS["truncate-page-n"],
      ),
      busyTimeoutMs: r.duration(
        e.get("busy-timeout"),
        "busy-timeout",
        DEFAULTS.busyTimeoutMs,
        L["busy-timeout"],
      ),
      replicas,
      ...(r.bool(e.get("restore-if-db-not-exists"), "restore-if-db-not-exists", false)
        ? { restoreIfDbNotExists: true }
        : {}),
    };
    places.push({
      path: canonicalPath(path),
      written: path,
      line: r.line(item),
      dir: dir === undefined ? undefined : {
        pattern: r.string(e.get("pattern"), "pattern")!,
        recursive: r.bool(e.get("recursive"), "recursive", false),
      },
      metaPath: settings.metaPath === undefined ? undefined : canonicalPath(settings.metaPath),
      replicas: replicas.map((replica, i) => ({ replica, line: r.line(replicaNodes[i]) })),
    });
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
  if (v03Retention) {
    const v = v03Retention as { ms: number; node: YamlNode };
    if (snapshotRetentionSet) {
      r.warn(v.node, `key "retention" in a replica is ignored: snapshot: retention is set`);
    } else if (v.ms > compaction.snapshotRetentionMs) {
      compaction.snapshotRetentionMs = v.ms;
      r.warn(
        v.node,
        `key "retention" in a replica (Litestream v0.3) is kept as the global snapshot retention: ${
          formatDuration(v.ms)
        }, the longest of the replicas'`,
      );
    }
  }
  const overlap = findOverlap(places);
  if (overlap) throw new ConfigError(file, overlap.message, overlap.line);
  const shutdownSyncTimeoutMs = r.duration(
    top.get("shutdown-sync-timeout"),
    "shutdown-sync-timeout",
    DEFAULT_SHUTDOWN_SYNC_TIMEOUT_MS,
    L["shutdown-sync-timeout"],
  );
  const heartbeatUrl = r.string(top.get("heartbeat-url"), "heartbeat-url");
  if (heartbeatUrl !== undefined && !/^https?:\/\/[^/]/i.test(heartbeatUrl)) {
    r.fail(top.get("heartbeat-url"), `"heartbeat-url" must be an http or https URL`);
  }
  const heartbeat = heartbeatUrl
    ? {
      url: heartbeatUrl,
      intervalMs: r.duration(
        top.get("heartbeat-interval"),
        "heartbeat-interval",
        DEFAULT_HEARTBEAT_INTERVAL_MS,
        L["heartbeat-interval"],
      ),
    }
    : undefined;
  return {
    ...(heartbeat ? { heartbeat } : {}),
    dbs,
    dirs,
    logging,
    compaction,
    shutdownSyncTimeoutMs,
    ...serving,
    warnings: r.warnings,
  };
}

/**
 * The config path when no -config flag names one: $STRATA_CONFIG, then
 * $LITESTREAM_CONFIG, then /etc/strata.yml, then /etc/litestream.yml (the
 * first that exists of those two; /etc/strata.yml when neither does), so a
 * Litestream setup works unchanged.
 */
export function defaultConfigPath(env = Deno.env.toObject(), exists = fileExists): string {
  const named = env.STRATA_CONFIG ?? env.LITESTREAM_CONFIG;
  if (named !== undefined && named !== "") return named;
  for (const p of ["/etc/strata.yml", "/etc/litestream.yml"]) if (exists(p)) return p;
  return "/etc/strata.yml";
}

function fileExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
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

/**
 * A `snapshot:` given in dbs entries (Litestream v0.5 promotes it to the
 * global setting, which is the only one): the one node to use when the top
 * level has none. Entries that disagree with each other or with the top
 * level are refused, as Litestream refuses them.
 */
function dbSnapshot(
  r: Reader,
  root: YamlNode,
  top: Map<string, YamlNode>,
): YamlNode | undefined {
  const dbs = top.get("dbs");
  if (!dbs || !isSeq(dbs)) return undefined;
  const keyOf = (m: YamlNode) =>
    isMap(m) ? m.items.find((p) => isScalar(p.key) && p.key.value === "snapshot") : undefined;
  let found = keyOf(root);
  for (const item of dbs.items as YamlNode[]) {
    const pair = keyOf(item);
    if (!pair || pair.value === null) continue;
    if (found && String(found.value) !== String(pair.value)) {
      r.fail(
        pair.key as YamlNode,
        `"snapshot" differs from the one at line ${
          r.line(found.key as YamlNode)
        }: snapshots are set once for every database`,
      );
    }
    found ??= pair;
  }
  return top.has("snapshot") ? undefined : found?.value as YamlNode | undefined;
}

/**
 * `age: {recipients: [age1…], identities: [AGE-SECRET-KEY-1… or a path to an
 * identity file]}`, as Litestream v0.3 wrote it. Keys are checked by form;
 * messages never show a secret key.
 */
function parseAge(r: Reader, node: YamlNode): AgeSettings {
  const e = r.entries(node, "age", ["recipients", "identities"]);
  const list = (k: string): { value: string; node: YamlNode }[] => {
    const n = e.get(k);
    if (n === undefined || n === null) return [];
    if (!isSeq(n)) r.fail(n, `"age.${k}" must be a list`);
    return (n.items as YamlNode[]).map((item) => ({ value: r.string(item, k) ?? "", node: item }));
  };
  const recipients = list("recipients").map(({ value, node }) => {
    const v = value.trim();
    if (!/^age1[0-9a-z]{20,}$/.test(v)) {
      r.fail(node, `"age.recipients": ${JSON.stringify(v)} is not an age recipient (age1…)`);
    }
    return v;
  });
  const identities: string[] = [];
  for (const { value, node } of list("identities")) {
    const v = value.trim();
    if (/^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(v)) {
      identities.push(v);
      continue;
    }
    if (/^AGE-SECRET-KEY-/i.test(v)) {
      r.fail(node, `"age.identities": an entry is not a valid age identity`);
    }
    // a path to an identity file: one key a line, # comments
    let text: string;
    try {
      text = Deno.readTextFileSync(v);
    } catch (err) {
      r.fail(node, `"age.identities": identity file ${v}: ${(err as Error).message}`);
    }
    const keys = text!.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    if (keys.length === 0 || !keys.every((k) => /^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(k))) {
      r.fail(
        node,
        `"age.identities": identity file ${v} holds no age identity (AGE-SECRET-KEY-1… lines)`,
      );
    }
    identities.push(...keys);
  }
  if (recipients.length === 0 && identities.length === 0) {
    r.fail(node, `"age" needs "recipients" (to write) and/or "identities" (to read)`);
  }
  return { recipients, identities };
}

/** Whether a `snapshot:` mapping sets `retention`. */
function hasSnapshotRetention(node: YamlNode | undefined | null): boolean {
  return !!node && isMap(node) && node.has("retention");
}

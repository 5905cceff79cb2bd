/** Shared pieces of the commands: config loading, replica clients, help output. */

import { resolve } from "node:path";
import type { Config } from "../config/config_types.ts";
import { configForPath } from "../config/dir_config.ts";
import { parseReplicaUrl, type ReplicaConfig } from "../config/replica_url.ts";
import { DurationError, type DurationRange, parseDurationIn } from "../config/duration.ts";
import { FileReplicaClient, type ReplicaClient } from "../storage/mod.ts";
import { SftpReplicaClient } from "../storage/sftp_client.ts";
import { AbsReplicaClient } from "../storage/abs_client.ts";
import { GcsReplicaClient } from "../storage/gcs_client.ts";
import { WebDavReplicaClient } from "../storage/webdav_client.ts";
import { NatsReplicaClient } from "../storage/nats_client.ts";
import { S3ReplicaClient } from "../storage/s3_client.ts";
import { LitestreamFormClient } from "../storage/litestream_form_client.ts";
import { AgeReplicaClient } from "../storage/age_client.ts";
import { s3ClientOptions } from "../config/s3_config.ts";
import { configureLogging, log } from "../log.ts";
import { allowedBranchSource } from "./branch_source.ts";
import { BranchReplicaClient } from "../branch/mod.ts";
import { CachingReplicaClient, restoreCache } from "../restore/mod.ts";
import {
  type FlagSpecs,
  formatFlagHelp,
  type ParsedFlags,
  parseFlags,
  UsageError,
} from "./flags.ts";

export const CONFIG_FLAGS: FlagSpecs = {
  config: {
    type: "string",
    value: "PATH",
    help:
      "config file (default $STRATA_CONFIG, $LITESTREAM_CONFIG, /etc/strata.yml or /etc/litestream.yml)",
  },
  "no-expand-env": {
    type: "bool",
    help: "do not expand $VAR, ${VAR} and ${VAR:-default} in the config file",
  },
};

export function clientFor(r: ReplicaConfig): ReplicaClient {
  const c = storeClientFor(r);
  if (r.age) return new AgeReplicaClient(c, r.age); // never with format: litestream (refused)
  // written so released Litestream v0.5 restores it (reads take both forms anyway)
  return r.format === "litestream" ? new LitestreamFormClient(c) : c;
}

function storeClientFor(r: ReplicaConfig): ReplicaClient {
  switch (r.type) {
    case "file":
      return new FileReplicaClient(r.path);
    case "s3":
      return new S3ReplicaClient(s3ClientOptions(r));
    case "sftp":
      return new SftpReplicaClient(r);
    case "abs":
      return new AbsReplicaClient(r);
    case "gs":
      return new GcsReplicaClient(r);
    case "webdav":
      return new WebDavReplicaClient(r);
    case "nats":
      return new NatsReplicaClient(r);
  }
}

/** `-allow-source`, for the commands that read branches. */
export const BRANCH_SOURCE_FLAGS: FlagSpecs = {
  "allow-source": {
    type: "string",
    value: "URL",
    help:
      "follow a branch's source under URL (repeatable; by default only sources on the branch's own store or in the config)",
  },
};

/**
 * `clientFor`, seeing a branch whole: a branch's base files are read from its
 * source replica (whose client `wrap` may also wrap, e.g. with the cache),
 * when that source is allowed (see branch_source.ts; `allowed`: the replicas
 * the user named).
 */
export function branchAwareClientFor(
  r: ReplicaConfig,
  wrap: (c: ReplicaClient) => ReplicaClient = (c) => c,
  allowed: ReplicaConfig[] = [],
): BranchReplicaClient {
  const inner = wrap(clientFor(r));
  const branch = { config: r, location: inner.location };
  return new BranchReplicaClient(
    inner,
    (url) => wrap(clientFor(allowedBranchSource(branch, url, allowed))),
  );
}

/** The replicas `-allow-source` names, and those of the config file. */
export function allowedSources(flags: ParsedFlags, cfg: Config | null): ReplicaConfig[] {
  const named = (flags.lists.get("allow-source") ?? []).map((u) => {
    try {
      return parseReplicaUrl(u);
    } catch (e) {
      throw new UsageError(`-allow-source: ${(e as Error).message}`);
    }
  });
  return [...named, ...(cfg?.dbs.flatMap((d) => d.replicas) ?? [])];
}

/** Reads of a network replica go through the local restore cache (when enabled). */
function cached(c: ReplicaClient): ReplicaClient {
  const cache = restoreCache();
  if (!cache || c.type === "file") return c;
  // an encrypted replica's files are cached as stored (encrypted), and decrypted when read
  if (c instanceof AgeReplicaClient) {
    return new AgeReplicaClient(new CachingReplicaClient(c.inner, cache), c.settings);
  }
  return new CachingReplicaClient(c, cache);
}

export async function readConfig(flags: ParsedFlags, required: boolean): Promise<Config | null> {
  // the YAML parser loads only when a config is read (a restore from a URL needs none)
  const { defaultConfigPath, loadConfig } = await import("../config/config.ts");
  const explicit = flags.strings.get("config");
  const path = explicit ?? defaultConfigPath();
  if (!explicit && !required) {
    try {
      await Deno.stat(path);
    } catch {
      return null;
    }
  }
  const cfg = await loadConfig(path, { expandEnv: !flags.bools.has("no-expand-env") });
  // logs go to stdout only for replicate (other commands print their results there)
  configureLogging({ level: cfg.logging.level, type: cfg.logging.type });
  for (const w of cfg.warnings ?? []) log("warn", w);
  return cfg;
}

/** `-h` handling: prints usage and returns true. */
export function wantsHelp(argv: string[], usage: string, specs: FlagSpecs): boolean {
  if (argv.includes("-h") || argv.includes("--help") || argv.includes("-help")) {
    console.log(`${usage}\n\nFlags:\n${formatFlagHelp(specs)}`);
    return true;
  }
  return false;
}

export function parse(argv: string[], specs: FlagSpecs): ParsedFlags {
  return parseFlags(argv, specs);
}

/** A database path from the config, or a replica URL, to the replica clients it names. */
export async function replicasFor(
  target: string,
  flags: ParsedFlags,
): Promise<{ clients: ReplicaClient[]; dbPath: string | null }> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    const allowed = allowedSources(flags, null);
    return {
      clients: [branchAwareClientFor(parseReplicaUrl(target), cached, allowed)],
      dbPath: null,
    };
  }
  const cfg = await readConfig(flags, false);
  const abs = resolve(target);
  const db = cfg ? configForPath(cfg, abs) : null;
  if (!db) {
    throw new UsageError(
      cfg
        ? `database ${target} is not in the config file`
        : `no config file found for database ${target}; pass -config PATH or a replica URL`,
    );
  }
  const allowed = allowedSources(flags, cfg);
  return {
    clients: db.replicas.map((r) => branchAwareClientFor(r, cached, allowed)),
    dbPath: abs,
  };
}

/** A duration flag within `range` (ms), or undefined when not given; out of range: a UsageError naming it. */
export function durationFlag(
  flags: ParsedFlags,
  name: string,
  range: DurationRange,
): number | undefined {
  const text = flags.strings.get(name);
  if (text === undefined) return undefined;
  try {
    return parseDurationIn(text, range);
  } catch (e) {
    if (e instanceof DurationError) throw new UsageError(`-${name}: ${e.message}`);
    throw e;
  }
}

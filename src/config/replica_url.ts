/** Replica URLs and paths → typed replica settings. */

import { resolve } from "node:path";
import { ReplicaUrlError } from "./replica_error.ts";
import { parseS3Url, type S3ReplicaConfig, s3ReplicaConfig } from "./s3_config.ts";
import { parseSftpUrl, type SftpReplicaConfig } from "./sftp_config.ts";
import { type AbsReplicaConfig, parseAbsUrl } from "./abs_config.ts";
import { type GcsReplicaConfig, parseGcsUrl } from "./gcs_config.ts";
import { parseWebDavUrl, type WebDavReplicaConfig } from "./webdav_config.ts";
import { type NatsReplicaConfig, parseNatsUrl } from "./nats_config.ts";

export interface FileReplicaConfig {
  type: "file";
  path: string;
  name?: string;
  syncIntervalMs?: number;
}

export { ReplicaUrlError };

/** One replica's settings, by `type`. */
export type ReplicaConfig =
  & (
    | FileReplicaConfig
    | SftpReplicaConfig
    | AbsReplicaConfig
    | GcsReplicaConfig
    | S3ReplicaConfig
    | WebDavReplicaConfig
    | NatsReplicaConfig
  )
  & {
    /** Restore-and-compare the replica this often (`validation-interval`); 0 or unset: never. */
    validationIntervalMs?: number;
    /** `format: litestream`: files written so released Litestream v0.5 restores them. */
    format?: "strata" | "litestream";
    /** `age:` encryption of every file uploaded (recipients) and read (identities). */
    age?: { recipients: string[]; identities: string[] };
  };

/** Parses `file:///path`, a plain path, or s3://, oss://, gs://, abs://, sftp://, webdav[s]://, nats:// URLs. */
export function parseReplicaUrl(url: string, type = "file"): ReplicaConfig {
  if (!url) {
    throw new ReplicaUrlError(url, "empty; give a path or a URL such as file:///backups/db");
  }
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(url);
  if (!m) {
    if (type !== "file") throw new ReplicaUrlError(url, `type ${type} needs a URL`);
    return { type: "file", path: resolve(url) };
  }
  const scheme = m[1].toLowerCase();
  if (scheme === "file") {
    const u = new URL(url);
    if (u.host !== "" && u.host !== "localhost") {
      throw new ReplicaUrlError(url, "file URLs take no host (file:///path)");
    }
    const path = decodeURIComponent(u.pathname);
    if (!path || path === "/") throw new ReplicaUrlError(url, "no path");
    return { type: "file", path };
  }
  if (scheme === "sftp") return parseSftpUrl(url);
  if (scheme === "abs") return parseAbsUrl(url);
  if (scheme === "gs") return parseGcsUrl(url);
  if (scheme === "webdav" || scheme === "webdavs") return parseWebDavUrl(url);
  if (scheme === "nats") return parseNatsUrl(url);
  if (scheme === "s3") return parseS3Url(url);
  if (scheme === "oss") return s3ReplicaConfig(url, undefined, () => undefined)!;
  throw new ReplicaUrlError(url, `unknown scheme "${scheme}"`);
}

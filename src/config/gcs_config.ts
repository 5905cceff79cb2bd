/**
 * `gs` (Google Cloud Storage) replica settings, as Litestream's:
 * `gs://bucket/path` and the keys `bucket`, `path`. Credentials are Google's
 * application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's,
 * or the metadata server); `STORAGE_EMULATOR_HOST` points the client at an
 * emulator, as Google's libraries do.
 */

import { cleanPath, ReplicaUrlError } from "./replica_error.ts";

export interface GcsReplicaConfig {
  type: "gs";
  bucket: string;
  /** Object name prefix, no leading or trailing slash ("" = bucket root). */
  path: string;
  name?: string;
  syncIntervalMs?: number;
}

/** `bucket` is shared with abs (and s3); gs has no other keys. */
export const GCS_KEYS = ["bucket"];

/** Bucket names: 3–63 characters (222 with dots) of a-z, 0-9, -, _ and ., a letter or digit at each end. */
export function bucketNameProblem(name: string): string | null {
  const max = name.includes(".") ? 222 : 63;
  if (
    name.length < 3 || name.length > max || !/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(name) ||
    name.split(".").some((part) => part.length === 0 || part.length > 63)
  ) {
    return `bucket name ${
      JSON.stringify(name)
    } is not valid (3-63 lowercase letters, digits, "-", "_" and ".")`;
  }
  return null;
}

/** Parses `gs://bucket/path`. */
export function parseGcsUrl(url: string): GcsReplicaConfig {
  const m = /^gs:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  if (!m) throw new ReplicaUrlError(url, "expected gs://bucket/path");
  if (m[3] || m[4]) throw new ReplicaUrlError(url, "gs URLs take no query or fragment");
  if (!m[1]) throw new ReplicaUrlError(url, "no bucket (gs://bucket/path)");
  if (m[1].includes("@")) throw new ReplicaUrlError(url, "gs URLs take no user (gs://bucket/path)");
  const problem = bucketNameProblem(m[1]);
  if (problem) throw new ReplicaUrlError(url, problem);
  let path: string;
  try {
    path = decodeURIComponent(m[2] ?? "");
  } catch {
    throw new ReplicaUrlError(url, "bad percent-encoding in the path");
  }
  return { type: "gs", bucket: m[1], path: cleanPath(path).replace(/^\//, "") };
}

/** A config entry's url and keys → settings (`url` with `path` or `bucket` is an error, as in Litestream). */
export function gcsConfigFromKeys(
  url: string | undefined,
  get: (key: string) => string | undefined,
): GcsReplicaConfig {
  if (url && get("path") !== undefined) throw new Error(`use "url" or "path", not both`);
  if (url && get("bucket") !== undefined) throw new Error(`use "url" or "bucket", not both`);
  if (url) return parseGcsUrl(url);
  const bucket = get("bucket");
  if (!bucket) throw new Error(`a gs replica needs "bucket" or a url gs://bucket/path`);
  const problem = bucketNameProblem(bucket);
  if (problem) throw new Error(`"bucket": ${problem}`);
  return { type: "gs", bucket, path: cleanPath(get("path") ?? "").replace(/^\//, "") };
}

/**
 * Which branch sources strata follows. A branch's manifest names its source
 * replica by URL, and reading the base means sending requests signed with the
 * restorer's own credentials (environment, SSH keys) to wherever that URL
 * points: whoever can write the manifest could aim them at an endpoint of
 * their choosing. So a source is followed only when the user allows it:
 *
 * - by default, a source on the branch's own store: the same S3 endpoint and
 *   bucket, GCS bucket, Azure account and container, or SFTP user, host and
 *   port (any path in it); a local directory for a branch in a directory;
 * - or a source under a replica the user named: `-allow-source URL` (repeat
 *   it for several; a URL without a path allows the whole bucket), or any
 *   replica listed in the config file in use.
 *
 * A refused source is an error naming the branch, the source and the way to
 * allow it; no request is made to it.
 */

import { parseReplicaUrl, type ReplicaConfig } from "../config/replica_url.ts";
import { BranchError } from "../branch/mod.ts";

export class BranchSourceNotAllowedError extends BranchError {
  constructor(branch: string, source: string, why: string) {
    super(
      `branch ${branch}: its manifest names the source ${source}, ${why}; strata sends your credentials only to a branch's own store or to sources you allow: pass -allow-source ${source}, or list that replica in the config file`,
    );
    this.name = "BranchSourceNotAllowedError";
  }
}

function origin(endpoint: string | undefined, fallback: string): string {
  if (!endpoint) return fallback;
  try {
    return new URL(endpoint).origin.toLowerCase();
  } catch {
    return endpoint.toLowerCase();
  }
}

/** Where a replica's requests go: its store, without the path inside it. */
export function storeOf(r: ReplicaConfig): string {
  switch (r.type) {
    case "file":
      return "file";
    case "s3":
      return `s3 ${origin(r.endpoint, "aws")} bucket ${r.bucket}`;
    case "gs":
      return `gs bucket ${r.bucket}`;
    case "abs":
      return `abs ${origin(r.endpoint, r.accountName ?? "")} container ${r.container}`;
    case "sftp":
      return `sftp ${r.user}@${r.host.toLowerCase()}:${r.port}`;
    case "webdav":
      return `webdav ${r.url.toLowerCase()}`;
    case "nats":
      return `nats ${r.server.toLowerCase()} bucket ${r.bucket}`;
  }
}

function trimSlashes(p: string): string {
  return p.replace(/^\/+|\/+$/g, "");
}

/** `r` lies in `allowed`: the same store, and the same path or one below it. */
function under(r: ReplicaConfig, allowed: ReplicaConfig): boolean {
  if (storeOf(r) !== storeOf(allowed)) return false;
  const a = trimSlashes(allowed.path);
  const p = trimSlashes(r.path);
  return a === "" || p === a || p.startsWith(`${a}/`);
}

/**
 * The source's settings when the branch at `branch` may follow `url` (see the
 * module comment); else a `BranchSourceNotAllowedError`.
 */
export function allowedBranchSource(
  branch: { config: ReplicaConfig; location: string },
  url: string,
  allowed: ReplicaConfig[],
): ReplicaConfig {
  let source: ReplicaConfig;
  try {
    source = parseReplicaUrl(url);
  } catch (e) {
    throw new BranchSourceNotAllowedError(branch.location, url, (e as Error).message);
  }
  // an allowed replica's encryption goes with it (a branch of an encrypted source reads it)
  const within = allowed.find((a) => under(source, a));
  if (within) return withEncryptionOf(source, within);
  if (storeOf(source) === storeOf(branch.config)) return withEncryptionOf(source, branch.config);
  throw new BranchSourceNotAllowedError(
    branch.location,
    url,
    `which is not on the branch's own store (${storeOf(branch.config)})`,
  );
}

/** `r` with `from`'s age settings, when `from` has some and `r` none. */
function withEncryptionOf(r: ReplicaConfig, from: ReplicaConfig): ReplicaConfig {
  return from.age && !r.age ? { ...r, age: from.age } : r;
}

/**
 * A replica URL given on the command line, with the settings of the config's
 * replica it names or lies in (its encryption, so that an encrypted replica is
 * read and written through its keys): the URL itself when none matches.
 */
export function withConfigSettings(url: string, configured: ReplicaConfig[]): ReplicaConfig {
  const r = parseReplicaUrl(url);
  const match = configured.find((c) => under(r, c));
  return match ? withEncryptionOf(r, match) : r;
}

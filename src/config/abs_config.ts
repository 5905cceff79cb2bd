/**
 * `abs` (Azure Blob Storage) replica settings, as Litestream's:
 * `abs://[account@]container/path` and the keys `account-name`,
 * `account-key`, `sas-token`, `endpoint`, `bucket` (the container), `path`.
 * The account key may come from `LITESTREAM_AZURE_ACCOUNT_KEY` and the SAS
 * token from `LITESTREAM_AZURE_SAS_TOKEN` (read when the client starts).
 */

import { cleanPath, ReplicaUrlError } from "./replica_error.ts";

export interface AbsReplicaConfig {
  type: "abs";
  accountName?: string;
  accountKey?: string;
  sasToken?: string;
  /** Blob service URL; default `https://<account>.blob.core.windows.net`. */
  endpoint?: string;
  container: string;
  /** Blob name prefix, no leading or trailing slash ("" = container root). */
  path: string;
  name?: string;
  syncIntervalMs?: number;
}

export const ABS_KEYS = ["account-name", "account-key", "sas-token", "endpoint", "bucket"];

/** Container names: 3–63 of lowercase letters, digits and single hyphens, a letter or digit first. */
export function containerNameProblem(name: string): string | null {
  if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/.test(name)) {
    return `container name ${
      JSON.stringify(name)
    } is not valid (3-63 lowercase letters, digits and single hyphens)`;
  }
  return null;
}

/** Parses `abs://[account@]container/path`. */
export function parseAbsUrl(url: string): AbsReplicaConfig {
  const m = /^abs:\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  if (!m) throw new ReplicaUrlError(url, "expected abs://[account@]container/path");
  if (m[4] || m[5]) throw new ReplicaUrlError(url, "abs URLs take no query or fragment");
  if (!m[2]) throw new ReplicaUrlError(url, "no container (abs://[account@]container/path)");
  const problem = containerNameProblem(m[2]);
  if (problem) throw new ReplicaUrlError(url, problem);
  let path: string;
  try {
    path = decodeURIComponent(m[3] ?? "");
  } catch {
    throw new ReplicaUrlError(url, "bad percent-encoding in the path");
  }
  return {
    type: "abs",
    accountName: m[1] || undefined,
    container: m[2],
    path: cleanPath(path).replace(/^\//, ""),
  };
}

/** A config entry's url and keys → settings; keys fill in or override, as Litestream does. */
export function absConfigFromKeys(
  url: string | undefined,
  get: (key: string) => string | undefined,
): AbsReplicaConfig {
  if (url && get("path") !== undefined) throw new Error(`use "url" or "path", not both`);
  if (url && get("bucket") !== undefined) throw new Error(`use "url" or "bucket", not both`);
  const cfg: AbsReplicaConfig = url ? parseAbsUrl(url) : {
    type: "abs",
    container: get("bucket") ?? "",
    path: cleanPath(get("path") ?? "").replace(/^\//, ""),
  };
  if (!cfg.container) throw new Error(`an abs replica needs "bucket" (the container) or a url`);
  const problem = containerNameProblem(cfg.container);
  if (problem) throw new Error(`"bucket": ${problem}`);
  const account = get("account-name");
  if (account) cfg.accountName = account;
  const key = get("account-key");
  if (key) {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) throw new Error(`"account-key" is not base64`);
    cfg.accountKey = key;
  }
  const sas = get("sas-token");
  if (sas) cfg.sasToken = sas.replace(/^\?/, "");
  const endpoint = get("endpoint");
  if (endpoint) {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      throw new Error(
        `"endpoint" ${JSON.stringify(endpoint)} is not a URL (https://host[:port][/account])`,
      );
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") {
      throw new Error(`"endpoint" ${JSON.stringify(endpoint)} must be http:// or https://`);
    }
    cfg.endpoint = endpoint.replace(/\/+$/, "");
  }
  if (!cfg.endpoint && !cfg.accountName) {
    throw new Error(
      `an abs replica needs "account-name" (or abs://account@container/path) or "endpoint"`,
    );
  }
  return cfg;
}

/**
 * `sftp` replica settings: `sftp://user[:password]@host[:port]/path` and the
 * keys `host`, `user`, `password`, `key-path`, `host-key`, as Litestream's.
 * The URL path is kept absolute (`/backups/db`), as Litestream's config does;
 * a `path` key may be relative (to the login directory).
 */

import { cleanPath, ReplicaUrlError } from "./replica_error.ts";

export interface SftpReplicaConfig {
  type: "sftp";
  host: string;
  port: number;
  user: string;
  password?: string;
  /** Root of the replica on the server (`<path>/ltx/<level>/…`). */
  path: string;
  /** A private key file (OpenSSH or PEM). */
  keyPath?: string;
  /** The server's public key, "ssh-ed25519 AAAA…" as in known_hosts; else known_hosts is used. */
  hostKey?: string;
  name?: string;
  syncIntervalMs?: number;
}

export const SFTP_KEYS = ["host", "user", "password", "key-path", "host-key"];

/** `host`, `host:port` or `[v6]:port` → host and port (default 22). */
export function splitHostPort(hostport: string, what: string): { host: string; port: number } {
  let host = hostport;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(hostport);
  if (v6) {
    host = v6[1];
    portText = v6[2];
  } else if ((hostport.match(/:/g) ?? []).length === 1) {
    [host, portText] = hostport.split(":");
  }
  if (!host) throw new Error(`${what}: no host`);
  let port = 22;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new Error(`${what}: bad port ${JSON.stringify(portText)}`);
    }
    port = Number(portText);
  }
  return { host, port };
}

function decode(s: string, url: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ReplicaUrlError(url, `bad percent-encoding in the ${what}`);
  }
}

/** Parses `sftp://user[:password]@host[:port]/path`. */
export function parseSftpUrl(url: string): SftpReplicaConfig {
  const m = /^sftp:\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  if (!m) throw new ReplicaUrlError(url, "expected sftp://user[:password]@host[:port]/path");
  if (m[4] || m[5]) throw new ReplicaUrlError(url, "sftp URLs take no query or fragment");
  const userinfo = m[1] ?? "";
  const colon = userinfo.indexOf(":");
  const user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, url, "user");
  const password = colon >= 0 ? decode(userinfo.slice(colon + 1), url, "password") : undefined;
  if (!m[2]) throw new ReplicaUrlError(url, "no host (sftp://user@host/path)");
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(m[2], "host");
  } catch (e) {
    throw new ReplicaUrlError(url, (e as Error).message);
  }
  if (!user) throw new ReplicaUrlError(url, "no user (sftp://user@host/path)");
  const path = cleanPath(decode(m[3] ?? "", url, "path"));
  return { type: "sftp", ...hp, user, password: password || undefined, path };
}

/**
 * Applies the replica keys of a config entry on top of its URL (if any), as
 * Litestream does: `url` with `path` or `host` is an error; other keys fill in
 * or override. `get(key)` returns a key's string value or undefined.
 */
export function sftpConfigFromKeys(
  url: string | undefined,
  get: (key: string) => string | undefined,
): SftpReplicaConfig {
  if (url && get("path") !== undefined) throw new Error(`use "url" or "path", not both`);
  if (url && get("host") !== undefined) throw new Error(`use "url" or "host", not both`);
  const base: Partial<SftpReplicaConfig> = url ? parseSftpUrl(url) : { type: "sftp", port: 22 };
  const cfg = { ...base, type: "sftp" } as SftpReplicaConfig;
  const host = get("host");
  if (host !== undefined) Object.assign(cfg, splitHostPort(host, `"host" ${JSON.stringify(host)}`));
  const user = get("user");
  if (user) cfg.user = user;
  const password = get("password");
  if (password) cfg.password = password;
  const path = get("path");
  if (path !== undefined) cfg.path = cleanPath(path);
  cfg.path ??= "";
  const keyPath = get("key-path");
  if (keyPath !== undefined) {
    if (!keyPath) throw new Error(`"key-path" is empty`);
    cfg.keyPath = keyPath.startsWith("~/")
      ? (Deno.env.get("HOME") ?? "") + keyPath.slice(1)
      : keyPath;
  }
  const hostKey = get("host-key");
  if (hostKey !== undefined) {
    const problem = hostKeyProblem(hostKey);
    if (problem) throw new Error(`"host-key": ${problem}`);
    cfg.hostKey = hostKey.trim();
  }
  if (!cfg.host) throw new Error(`an sftp replica needs "host" (or a url sftp://user@host/path)`);
  if (!cfg.user) throw new Error(`an sftp replica needs "user" (or a url sftp://user@host/path)`);
  return cfg;
}

/** Why a `host-key` value is not a public key line ("type base64 [comment]"), or null. */
export function hostKeyProblem(line: string): string | null {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !parts[0]) {
    return `expected a public key such as "ssh-ed25519 AAAA…" (from ssh-keyscan or the server's /etc/ssh/ssh_host_*_key.pub)`;
  }
  let blob: Uint8Array;
  try {
    blob = Uint8Array.from(atob(parts[1]), (c) => c.charCodeAt(0));
  } catch {
    return `the key after "${parts[0]}" is not base64`;
  }
  const type = keyBlobType(blob);
  if (type === null) return `the key after "${parts[0]}" is not an SSH public key`;
  if (type !== parts[0]) return `the key is a ${type} key, not ${parts[0]}`;
  return null;
}

/** The algorithm name at the start of an SSH public key blob, or null. */
export function keyBlobType(blob: Uint8Array): string | null {
  if (blob.length < 4) return null;
  const n = ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
  if (n === 0 || n > 64 || 4 + n > blob.length) return null;
  const s = new TextDecoder().decode(blob.subarray(4, 4 + n));
  return /^[a-z0-9@.+-]+$/i.test(s) ? s : null;
}

/**
 * `webdav` replica settings, as Litestream's: `webdav://[user[:password]@]host[:port]/path`
 * (`webdavs://` for HTTPS), or the keys `webdav-url` (the server, `http(s)://host[:port]`),
 * `webdav-username`, `webdav-password` and `path`.
 */

import { cleanPath, ReplicaUrlError } from "./replica_error.ts";

export interface WebDavReplicaConfig {
  type: "webdav";
  /** The server: `http(s)://host[:port]` (a base path in it is kept). */
  url: string;
  /** The replica's directory on the server, with a leading slash. */
  path: string;
  username?: string;
  password?: string;
  name?: string;
  syncIntervalMs?: number;
}

export const WEBDAV_KEYS = ["webdav-url", "webdav-username", "webdav-password"];

/** Parses `webdav://` / `webdavs://` URLs. */
export function parseWebDavUrl(url: string): WebDavReplicaConfig {
  const m = /^(webdavs?):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url.trim());
  if (!m) throw new ReplicaUrlError(url, "expected webdav://host/path or webdavs://host/path");
  if (m[4] || m[5]) throw new ReplicaUrlError(url, "webdav URLs take no query or fragment");
  let user: string | undefined;
  let password: string | undefined;
  let host = m[2];
  const at = host.lastIndexOf("@");
  if (at >= 0) {
    const info = host.slice(0, at);
    host = host.slice(at + 1);
    const colon = info.indexOf(":");
    try {
      user = decodeURIComponent(colon < 0 ? info : info.slice(0, colon));
      if (colon >= 0) password = decodeURIComponent(info.slice(colon + 1));
    } catch {
      throw new ReplicaUrlError(url, "bad percent-encoding in the user info");
    }
  }
  if (!host) throw new ReplicaUrlError(url, "host required for a webdav replica URL");
  let path: string;
  try {
    path = decodeURIComponent(m[3] ?? "");
  } catch {
    throw new ReplicaUrlError(url, "bad percent-encoding in the path");
  }
  const scheme = m[1].toLowerCase() === "webdavs" ? "https" : "http";
  return {
    type: "webdav",
    url: `${scheme}://${host}`,
    path: "/" + cleanPath(path).replace(/^\/+/, ""),
    ...(user !== undefined ? { username: user } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

/** A config entry's url and keys → settings, as Litestream reads them. */
export function webDavConfigFromKeys(
  url: string | undefined,
  get: (key: string) => string | undefined,
): WebDavReplicaConfig {
  if (url && get("webdav-url") !== undefined) {
    throw new Error(`use "url" or "webdav-url", not both`);
  }
  if (url && get("path") !== undefined) throw new Error(`use "url" or "path", not both`);
  const base = url ? parseWebDavUrl(url) : null;
  let server = base?.url ?? get("webdav-url");
  if (!server) throw new Error(`a webdav replica needs "webdav-url" or a url webdav://host/path`);
  let fromUrl: { username?: string; password?: string } = {};
  try {
    const u = new URL(server);
    if (!/^https?:$/.test(u.protocol) || !u.host) throw new Error();
    // credentials written into webdav-url become the login, never part of the location
    if (u.username || u.password) {
      fromUrl = {
        username: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
      };
      u.username = "";
      u.password = "";
      server = u.toString();
    }
  } catch {
    throw new Error(`"webdav-url" must be an http or https URL`);
  }
  const username = get("webdav-username") ?? base?.username ?? fromUrl.username;
  const password = get("webdav-password") ?? base?.password ?? fromUrl.password;
  return {
    type: "webdav",
    url: server.replace(/\/+$/, ""),
    path: base?.path ?? "/" + cleanPath(get("path") ?? "").replace(/^\/+/, ""),
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

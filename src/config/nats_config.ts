/**
 * `nats` replica settings, as Litestream's: `nats://[user[:password]@]host[:port]/bucket`
 * (a JetStream object store bucket, created beforehand), the keys `bucket`
 * and `path` (a prefix inside the bucket), and the connection's
 * authentication and TLS keys.
 */

import { cleanPath, ReplicaUrlError } from "./replica_error.ts";
import { parseDuration } from "./duration.ts";

export interface NatsReplicaConfig {
  type: "nats";
  /** `nats://host:port` (or `tls://…`): the server, without credentials or bucket. */
  server: string;
  bucket: string;
  /** Object name prefix inside the bucket, no leading or trailing slash. */
  path: string;
  username?: string;
  password?: string;
  token?: string;
  /** A `.creds` file (JWT and seed). */
  creds?: string;
  jwt?: string;
  seed?: string;
  /** An nkey seed file or value (nkey authentication). */
  nkey?: string;
  tls?: boolean;
  rootCAs?: string;
  clientCert?: string;
  clientKey?: string;
  maxReconnects?: number;
  reconnectWaitMs?: number;
  timeoutMs?: number;
  name?: string;
  syncIntervalMs?: number;
}

export const NATS_KEYS = [
  "jwt",
  "seed",
  "creds",
  "nkey",
  "username",
  "password",
  "token",
  "tls",
  "root-cas",
  "client-cert",
  "client-key",
  "max-reconnects",
  "reconnect-wait",
  "timeout",
];

/** Parses `nats://[user[:password]@]host[:port]/bucket`. */
export function parseNatsUrl(url: string): NatsReplicaConfig {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    throw new ReplicaUrlError(url, "expected nats://host[:port]/bucket");
  }
  if (u.protocol !== "nats:") throw new ReplicaUrlError(url, "expected nats://host[:port]/bucket");
  if (!u.hostname) throw new ReplicaUrlError(url, "host required for a nats replica URL");
  if (u.search || u.hash) throw new ReplicaUrlError(url, "nats URLs take no query or fragment");
  const bucket = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, "");
  if (!bucket) throw new ReplicaUrlError(url, "bucket required for a nats replica URL");
  if (!/^[A-Za-z0-9_-]+$/.test(bucket)) {
    throw new ReplicaUrlError(
      url,
      `bucket ${JSON.stringify(bucket)} is not a valid object store name`,
    );
  }
  return {
    type: "nats",
    server: `nats://${u.host}`,
    bucket,
    path: "",
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

/** A config entry's url and keys → settings. */
export function natsConfigFromKeys(
  url: string | undefined,
  get: (key: string) => string | undefined,
): NatsReplicaConfig {
  if (!url) throw new Error(`a nats replica needs a url nats://host[:port]/bucket`);
  const c = parseNatsUrl(url);
  const bucket = get("bucket");
  if (bucket !== undefined) c.bucket = bucket;
  c.path = cleanPath(get("path") ?? "").replace(/^\/+|\/+$/g, "");
  const str = (k: string) => get(k) || undefined;
  const user = str("username");
  if (user !== undefined) c.username = user;
  const pass = str("password");
  if (pass !== undefined) c.password = pass;
  for (
    const [k, f] of [
      ["token", "token"],
      ["creds", "creds"],
      ["jwt", "jwt"],
      ["seed", "seed"],
      ["nkey", "nkey"],
      ["root-cas", "rootCAs"],
      ["client-cert", "clientCert"],
      ["client-key", "clientKey"],
    ] as const
  ) {
    const v = str(k);
    if (v !== undefined) c[f] = v;
  }
  const tls = get("tls");
  if (tls !== undefined) {
    if (tls !== "true" && tls !== "false") throw new Error(`"tls" must be true or false`);
    c.tls = tls === "true";
  }
  if ((c.clientCert === undefined) !== (c.clientKey === undefined)) {
    throw new Error(`"client-cert" and "client-key" go together`);
  }
  if (c.jwt !== undefined && c.seed === undefined) throw new Error(`"jwt" needs "seed"`);
  const mr = get("max-reconnects");
  if (mr !== undefined) {
    const n = Number(mr);
    if (!Number.isInteger(n) || n < -1) {
      throw new Error(`"max-reconnects" must be an integer (-1: forever)`);
    }
    c.maxReconnects = n;
  }
  for (const [k, f] of [["reconnect-wait", "reconnectWaitMs"], ["timeout", "timeoutMs"]] as const) {
    const v = get(k);
    if (v === undefined) continue;
    const ms = parseDuration(v);
    if (ms === null || ms <= 0) throw new Error(`"${k}": invalid duration ${JSON.stringify(v)}`);
    c[f] = ms;
  }
  return c;
}

/**
 * Replica types configured by keys as well as URLs (sftp, abs, gs): which
 * keys each takes, and their settings from a config entry.
 */

import type { ReplicaConfig } from "./replica_url.ts";
import { SFTP_KEYS, sftpConfigFromKeys } from "./sftp_config.ts";
import { ABS_KEYS, absConfigFromKeys } from "./abs_config.ts";
import { GCS_KEYS, gcsConfigFromKeys } from "./gcs_config.ts";
import { WEBDAV_KEYS, webDavConfigFromKeys } from "./webdav_config.ts";
import { NATS_KEYS, natsConfigFromKeys } from "./nats_config.ts";

type Builder = (url: string | undefined, get: (key: string) => string | undefined) => ReplicaConfig;

const BUILDERS: Record<string, { keys: string[]; build: Builder }> = {
  sftp: { keys: SFTP_KEYS, build: sftpConfigFromKeys },
  abs: { keys: ABS_KEYS, build: absConfigFromKeys },
  gs: { keys: GCS_KEYS, build: gcsConfigFromKeys },
  webdav: { keys: WEBDAV_KEYS, build: webDavConfigFromKeys },
  webdavs: { keys: WEBDAV_KEYS, build: webDavConfigFromKeys },
  nats: { keys: NATS_KEYS, build: natsConfigFromKeys },
};

/** Every key these replica types add to a replica entry. */
export const REMOTE_REPLICA_KEYS: string[] = [
  ...new Set(Object.values(BUILDERS).flatMap((b) => b.keys)),
];

/**
 * The settings of a replica entry whose type (from `url`'s scheme, else the
 * `type` key) is one of these; null for other types.
 */
export function remoteReplicaConfig(
  url: string | undefined,
  type: string | undefined,
  get: (key: string) => string | undefined,
): ReplicaConfig | null {
  const scheme = url ? /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase() : undefined;
  const t = scheme ?? type;
  const b = t ? BUILDERS[t] : undefined;
  return b ? b.build(url, get) : null;
}

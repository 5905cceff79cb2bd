/** `addr`, `exec` and `socket`: what `strata replicate` serves and runs beside replicating. */

import { isScalar, type Node as YamlNode } from "yaml";
import { type Config, DEFAULT_SOCKET_PATH, type SocketConfig } from "./config_types.ts";
import type { Reader } from "./reader.ts";

export const SERVING_KEYS = ["addr", "exec", "socket"];

export function parseServing(
  r: Reader,
  top: Map<string, YamlNode>,
): Pick<Config, "addr" | "exec" | "socket"> {
  const addr = r.string(top.get("addr"), "addr");
  if (addr !== undefined && addr !== "") {
    const m = /^(.*):(\d{1,5})$/.exec(addr);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      r.fail(
        top.get("addr"),
        `"addr" must be host:port or :port (port 1 to 65535), got ${JSON.stringify(addr)}`,
      );
    }
  }
  const exec = r.string(top.get("exec"), "exec");
  const socket: SocketConfig = { enabled: false, path: DEFAULT_SOCKET_PATH, permissions: 0o600 };
  const sock = top.get("socket");
  if (sock !== undefined && sock !== null) {
    const e = r.entries(sock, "socket", ["enabled", "path", "permissions"]);
    socket.enabled = r.bool(e.get("enabled"), "enabled", false);
    socket.path = r.string(e.get("path"), "path") || DEFAULT_SOCKET_PATH;
    const perms = e.get("permissions");
    if (perms !== undefined && perms !== null) socket.permissions = fileMode(r, perms);
  }
  return { addr: addr || undefined, exec: exec || undefined, socket };
}

/**
 * A file mode written in octal (`0600`, `0o600`), as Litestream (Go's YAML)
 * reads it; a decimal `600` (mode 01130) is refused rather than applied.
 */
function fileMode(r: Reader, node: YamlNode): number {
  const src = isScalar(node) ? r.written(node) : "";
  const m = /^0o?([0-7]{1,3})$/.exec(src.trim());
  if (!m) {
    r.fail(
      node,
      `"permissions" must be a file mode in octal with a leading 0, from 0000 to 0777 (e.g. 0600), got ${
        JSON.stringify(src)
      }`,
    );
  }
  return parseInt(m[1], 8);
}

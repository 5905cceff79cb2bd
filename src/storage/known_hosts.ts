/**
 * SSH host key checks for the SFTP client: a configured `host-key`, else
 * OpenSSH's known_hosts files (plain, wildcard, negated and hashed host
 * patterns, `[host]:port`, `@revoked`). Unknown hosts and changed keys are
 * refused with a message saying what the server offered.
 */

import { createHash, createHmac } from "node:crypto";
import { keyBlobType } from "../config/sftp_config.ts";

export interface KnownHostEntry {
  marker: "" | "@revoked" | "@cert-authority";
  patterns: string;
  type: string;
  blob: Uint8Array;
}

export function base64ToBytes(s: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function bytesToBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** OpenSSH's fingerprint: "SHA256:" and unpadded base64 of the key blob's SHA-256. */
export function fingerprint(blob: Uint8Array): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** A key blob as a known_hosts / authorized_keys line: "type base64". */
export function keyLine(blob: Uint8Array): string {
  return `${keyBlobType(blob) ?? "unknown"} ${bytesToBase64(blob)}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const f = line.split(/\s+/);
    let marker: KnownHostEntry["marker"] = "";
    if (f[0] === "@revoked" || f[0] === "@cert-authority") marker = f.shift() as typeof marker;
    if (f.length < 3) continue;
    const blob = base64ToBytes(f[2]);
    if (!blob) continue;
    out.push({ marker, patterns: f[0], type: f[1], blob });
  }
  return out;
}

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
      "$",
    "i",
  );
  return re.test(s);
}

function hashedMatch(pattern: string, name: string): boolean {
  const [, kind, salt64, hash64] = pattern.split("|");
  if (kind !== "1" || !salt64 || !hash64) return false;
  const salt = base64ToBytes(salt64);
  if (!salt) return false;
  const got = createHmac("sha1", salt).update(name).digest("base64");
  return got === hash64;
}

/** Whether a host pattern list ("a,b,!c,[d]:2222,|1|…") names `name` (host or "[host]:port"). */
export function patternsMatch(patterns: string, name: string): boolean {
  let matched = false;
  for (const p of patterns.split(",")) {
    if (p.startsWith("|")) {
      if (hashedMatch(p, name)) matched = true;
    } else if (p.startsWith("!")) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/** The name known_hosts uses for a host and port: "host" for 22, else "[host]:port". */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export type HostKeyVerdict = { ok: true } | { ok: false; reason: string };

/** Checks an offered key against a configured `host-key` line. */
export function checkConfiguredKey(
  where: string,
  configured: string,
  offered: Uint8Array,
): HostKeyVerdict {
  const want = base64ToBytes(configured.trim().split(/\s+/)[1] ?? "");
  if (want && equalBytes(want, offered)) return { ok: true };
  return {
    ok: false,
    reason: `host key mismatch for ${where}: the server offered ${keyBlobType(offered)} ${
      fingerprint(offered)
    }, but "host-key" is ${
      want ? `${keyBlobType(want)} ${fingerprint(want)}` : "unreadable"
    }; if the server's key really changed, set "host-key" to: ${keyLine(offered)}`,
  };
}

/** Checks an offered key against known_hosts entries. */
export function checkKnownHosts(
  where: string,
  host: string,
  port: number,
  entries: KnownHostEntry[],
  files: string[],
  offered: Uint8Array,
): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const mine = entries.filter((e) => patternsMatch(e.patterns, name));
  if (mine.some((e) => e.marker === "@revoked" && equalBytes(e.blob, offered))) {
    return { ok: false, reason: `host key of ${where} is marked @revoked in known_hosts` };
  }
  if (mine.some((e) => e.marker === "" && equalBytes(e.blob, offered))) return { ok: true };
  const offeredType = keyBlobType(offered);
  const sameType = mine.filter((e) => e.marker === "" && e.type === offeredType);
  if (sameType.length > 0) {
    return {
      ok: false,
      reason:
        `host key mismatch for ${where}: the server offered ${offeredType} ${
          fingerprint(offered)
        }, known_hosts (${files.join(", ")}) has ${
          sameType.map((e) => fingerprint(e.blob)).join(", ")
        } for ${name}; someone may be intercepting the connection. If the key really changed, ` +
        `update known_hosts or set "host-key" to: ${keyLine(offered)}`,
    };
  }
  return {
    ok: false,
    reason:
      `host key of ${where} is unknown: ${name} is not in known_hosts (${
        files.join(", ")
      }) with a ${offeredType} key. The server offered ${offeredType} ${fingerprint(offered)}; ` +
      `after checking it, set "host-key" in the replica config to: ${keyLine(offered)} ` +
      `(or add it to known_hosts, e.g. with ssh-keyscan)`,
  };
}

/** The default known_hosts files: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. */
export function defaultKnownHostsFiles(): string[] {
  const home = Deno.env.get("HOME");
  return [...(home ? [`${home}/.ssh/known_hosts`] : []), "/etc/ssh/ssh_known_hosts"];
}

export async function loadKnownHosts(files: string[]): Promise<KnownHostEntry[]> {
  const out: KnownHostEntry[] = [];
  for (const f of files) {
    try {
      out.push(...parseKnownHosts(await Deno.readTextFile(f)));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

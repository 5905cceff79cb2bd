/**
 * Reading a parsed YAML config: mappings with known keys only, typed values,
 * and every error as a ConfigError naming the file, the line and the key.
 */

import { isMap, isScalar, type LineCounter, type Node as YamlNode, type YAMLMap } from "yaml";
import { DurationError, type DurationRange, parseDurationIn } from "./duration.ts";
import { type IntRange, intRangeText } from "./limits.ts";

export class ConfigError extends Error {
  constructor(file: string, message: string, line?: number) {
    super(`config ${file}${line ? `:${line}` : ""}: ${message}`);
    this.name = "ConfigError";
  }
}

/**
 * Keys Litestream accepts in some mapping and strata does not act on: a
 * warning that says so and what strata does instead (a Litestream config
 * must start strata). `age` is refused: Litestream v0.5 refuses it too, and
 * a replica meant to be encrypted must not be written in plain.
 */
const LITESTREAM_IGNORED: Record<string, string> = {
  "mcp-addr": "strata has no MCP server",
  "shutdown-sync-interval":
    "strata's final sync at shutdown retries within shutdown-sync-timeout on its own schedule",
  validation: "strata validates each replica on its own validation-interval",
  "verify-compaction": "strata checks every compacted file's checksums as it writes it",
  "max-checkpoint-page-count":
    "removed in Litestream v0.5; strata checkpoints by min-checkpoint-page-count and truncate-page-n",
  "meta-dir": "use meta-path (the meta directory of each database)",
  "max-sync-wal-bytes": "strata captures the whole WAL at each tick, in files of bounded memory",
  "retention-check-interval": "a Litestream v0.3 replica key (Litestream v0.5 ignores it too)",
  "snapshot-interval":
    "a Litestream v0.3 replica key (Litestream v0.5 ignores it too): set the top-level snapshot: interval",
  "max-sync-ltx-files": "strata merges pending files into one upload after an outage",
  "auto-recover": "strata recovers a lost meta directory or replica by itself, with a snapshot",
  "sign-payload": "strata's S3 client signs every request as the SDK does by default",
  "concurrent-writes": "strata writes each SFTP file in one stream",
  source: "strata's log lines do not carry source positions",
};

/** Litestream keys strata refuses: not yet there, and ignoring them would be wrong. */
const NOT_YET = new Set<string>();

/** Edit distance of two short strings (for "did you mean"). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The allowed key `k` is most likely a typo of (at most 2 edits, 1 for short keys), or null. */
export function closestKey(k: string, allowed: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const a of allowed) {
    const d = distance(k, a);
    if (d < bestD) [best, bestD] = [a, d];
  }
  return bestD <= (Math.min(k.length, best?.length ?? 0) <= 4 ? 1 : 2) ? best : null;
}

export class Reader {
  /** Said once when the config is loaded (keys ignored), each naming the file and line. */
  readonly warnings: string[] = [];
  /** Keys valid somewhere else in a config, and where they go (a misplaced key is refused). */
  elsewhere: Record<string, string> = {};
  constructor(readonly file: string, readonly lines: LineCounter, readonly text = "") {}
  /** A scalar as written in the file (`0600` stays `0600`, where YAML 1.2 reads the number 600). */
  written(node: YamlNode): string {
    if (isScalar(node) && typeof node.value === "string") return node.value;
    const r = (node as { range?: [number, number, number] }).range;
    return r && this.text ? this.text.slice(r[0], r[1]) : String(isScalar(node) ? node.value : "");
  }
  warn(node: YamlNode | null | undefined, msg: string): void {
    const line = this.line(node);
    this.warnings.push(`config ${this.file}${line ? `:${line}` : ""}: ${msg}`);
  }
  line(node: YamlNode | null | undefined): number | undefined {
    const r = (node as { range?: [number, number, number] } | null)?.range;
    return r ? this.lines.linePos(r[0]).line : undefined;
  }
  fail(node: YamlNode | null | undefined, msg: string): never {
    throw new ConfigError(this.file, msg, this.line(node));
  }
  /**
   * Key/value pairs of a mapping with keys in `allowed`. Another key is
   * refused when it looks like a typo of an allowed one (naming it), when it
   * belongs in another part of the config, or when strata cannot honour it;
   * otherwise it is left out with a warning, as Litestream ignores
   * keys it does not know (saying what strata does instead for its own).
   */
  entries(node: YamlNode, where: string, allowed: string[]): Map<string, YamlNode> {
    if (!isMap(node)) this.fail(node, `${where} must be a mapping`);
    const out = new Map<string, YamlNode>();
    for (const pair of (node as YAMLMap).items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : "";
      const keyNode = pair.key as YamlNode;
      if (!allowed.includes(k)) {
        if (NOT_YET.has(k)) {
          this.fail(keyNode, `key "${k}" in ${where} is not supported yet by strata`);
        }
        const why = LITESTREAM_IGNORED[k];
        if (why !== undefined) {
          this.warn(keyNode, `key "${k}" in ${where} is ignored: ${why}`);
          continue;
        }
        const near = closestKey(k, allowed);
        if (near) this.fail(keyNode, `unknown key "${k}" in ${where}: did you mean "${near}"?`);
        const home = this.elsewhere[k];
        if (home) this.fail(keyNode, `key "${k}" does not go in ${where}: it goes in ${home}`);
        if (/^(sse|age|encrypt)/i.test(k)) {
          // an encryption setting strata does not know: refused, never ignored into plaintext
          this.fail(
            keyNode,
            `unknown encryption key "${k}" in ${where}: refused rather than store data unencrypted`,
          );
        }
        this.warn(keyNode, `unknown key "${k}" in ${where} is ignored`);
        continue;
      }
      out.set(k, pair.value as YamlNode);
    }
    return out;
  }
  string(node: YamlNode | undefined, key: string): string | undefined {
    if (node === undefined || node === null) return undefined;
    if (!isScalar(node) || typeof node.value === "object") {
      this.fail(node, `"${key}" must be a string`);
    }
    return String(node.value);
  }
  /** A duration within `range` (ms), or `dflt` when the key is absent. */
  duration(node: YamlNode | undefined, key: string, dflt: number, range: DurationRange): number {
    const s = this.string(node, key);
    if (s === undefined) return dflt;
    try {
      return parseDurationIn(s, range);
    } catch (e) {
      if (e instanceof DurationError) this.fail(node, `"${key}": ${e.message}`);
      throw e;
    }
  }
  /** An integer within `range`, or `dflt` when the key is absent. */
  int(node: YamlNode | undefined, key: string, dflt: number, range: IntRange): number {
    if (node === undefined || node === null) return dflt;
    const raw = isScalar(node) ? node.value : undefined;
    const v = typeof raw === "number" || (typeof raw === "string" && raw.trim() !== "")
      ? Number(raw)
      : NaN;
    const src = isScalar(node) ? JSON.stringify(node.source ?? String(node.value)) : "this value";
    if (!Number.isInteger(v)) this.fail(node, `"${key}" must be an integer, got ${src}`);
    if (!(v === 0 && range.zero !== undefined) && (v < range.min || v > range.max)) {
      this.fail(node, `"${key}": ${src} is out of range: ${intRangeText(range)}`);
    }
    return v;
  }
  bool(node: YamlNode | undefined, key: string, dflt: boolean): boolean {
    if (node === undefined || node === null) return dflt;
    if (!isScalar(node) || typeof node.value !== "boolean") {
      this.fail(node, `"${key}" must be true or false`);
    }
    return node.value as boolean;
  }
}

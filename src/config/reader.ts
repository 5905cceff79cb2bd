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

/** Litestream keys strata does not have yet: an error saying so, not "unknown key". */
const NOT_YET = new Set([
  "levels",
  "snapshot",
  "l0-retention",
  "l0-retention-check-interval",
  "retention",
  "mcp-addr",
  "retention-check-interval",
  "age",
]);

export class Reader {
  constructor(readonly file: string, readonly lines: LineCounter) {}
  line(node: YamlNode | null | undefined): number | undefined {
    const r = (node as { range?: [number, number, number] } | null)?.range;
    return r ? this.lines.linePos(r[0]).line : undefined;
  }
  fail(node: YamlNode | null | undefined, msg: string): never {
    throw new ConfigError(this.file, msg, this.line(node));
  }
  /** Key/value pairs of a mapping, rejecting keys not in `allowed`. */
  entries(node: YamlNode, where: string, allowed: string[]): Map<string, YamlNode> {
    if (!isMap(node)) this.fail(node, `${where} must be a mapping`);
    const out = new Map<string, YamlNode>();
    for (const pair of (node as YAMLMap).items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : "";
      if (!allowed.includes(k)) {
        if (NOT_YET.has(k)) {
          this.fail(pair.key as YamlNode, `key "${k}" in ${where} is not supported yet by strata`);
        }
        this.fail(pair.key as YamlNode, `unknown key "${k}" in ${where}`);
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

/** `levels`, `snapshot`, `l0-retention`, `l0-retention-check-interval`, `retention` (global keys). */

import { isScalar, isSeq, type Node as YamlNode } from "yaml";
import { type CompactionSettings, DEFAULT_COMPACTION } from "../replicate/compactor.ts";
import { DURATION_LIMITS as L } from "./limits.ts";
import type { Reader } from "./reader.ts";

export const COMPACTION_KEYS = [
  "levels",
  "snapshot",
  "l0-retention",
  "l0-retention-check-interval",
  "retention",
];

/** `snapshotFromDb`: a dbs entry's `snapshot:` standing for the top level's (see config.ts). */
export function parseCompaction(
  r: Reader,
  top: Map<string, YamlNode>,
  snapshotFromDb?: YamlNode,
): CompactionSettings {
  const d = DEFAULT_COMPACTION;
  let levelIntervalsMs = d.levelIntervalsMs;
  const levels = top.get("levels");
  if (levels !== undefined && levels !== null) {
    if (!isSeq(levels)) r.fail(levels, `"levels" must be a list of {interval: DURATION}`);
    const items = levels.items as YamlNode[];
    if (items.length > 8) r.fail(levels, `"levels" lists ${items.length} levels; at most 8`);
    levelIntervalsMs = items.map((item, i) => {
      const e = r.entries(item, `level ${i + 1}`, ["interval"]);
      if (!e.has("interval")) r.fail(item, `level ${i + 1} needs "interval"`);
      return r.duration(e.get("interval"), "interval", 0, L["level interval"]);
    });
    for (let i = 1; i < levelIntervalsMs.length; i++) {
      if (levelIntervalsMs[i] <= levelIntervalsMs[i - 1]) {
        r.fail(items[i], `level ${i + 1}'s interval must be longer than level ${i}'s`);
      }
    }
  }
  let snapshotIntervalMs = d.snapshotIntervalMs;
  let snapshotRetentionMs = d.snapshotRetentionMs;
  const snap = top.get("snapshot") ?? snapshotFromDb;
  if (snap !== undefined && snap !== null) {
    const e = r.entries(snap, "snapshot", ["interval", "retention"]);
    snapshotIntervalMs = r.duration(
      e.get("interval"),
      "interval",
      d.snapshotIntervalMs,
      L["snapshot interval"],
    );
    snapshotRetentionMs = r.duration(
      e.get("retention"),
      "retention",
      d.snapshotRetentionMs,
      L["snapshot retention"],
    );
  }
  let retentionEnabled = d.retentionEnabled;
  const ret = top.get("retention");
  if (ret !== undefined && ret !== null) {
    const e = r.entries(ret, "retention", ["enabled"]);
    const v = e.get("enabled");
    if (v !== undefined) {
      if (!isScalar(v) || typeof v.value !== "boolean") {
        r.fail(v, `"enabled" must be true or false`);
      }
      retentionEnabled = v.value as boolean;
    }
  }
  return {
    levelIntervalsMs,
    snapshotIntervalMs,
    snapshotRetentionMs,
    l0RetentionMs: r.duration(
      top.get("l0-retention"),
      "l0-retention",
      d.l0RetentionMs,
      L["l0-retention"],
    ),
    l0RetentionCheckIntervalMs: r.duration(
      top.get("l0-retention-check-interval"),
      "l0-retention-check-interval",
      d.l0RetentionCheckIntervalMs,
      L["l0-retention-check-interval"],
    ),
    retentionEnabled,
  };
}

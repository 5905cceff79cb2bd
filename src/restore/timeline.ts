/**
 * What a replica can be restored to: every point a restore can reach (the
 * end of a file the planner can chain from a snapshot, see plan.ts), the
 * finest level that gives it, and whether `-timestamp` at its time restores
 * exactly it (else `-txid` does). Points are grouped by level into windows:
 * every L0 file in L0's window, every L1/L2/… boundary before it, the
 * snapshots. Used by `strata timeline` and the web page.
 */

import { formatTXID } from "../ltx/mod.ts";
import { type ReplicaFile, SNAPSHOT_LEVEL } from "../storage/mod.ts";
import type { BranchManifest } from "../branch/mod.ts";

export interface RestorePoint {
  txid: bigint;
  /** The time `-timestamp` asks for: the newest creation time of the files ending at it. */
  time: Date;
  /** The finest level with a file ending here (0: an L0 file; 9: only a snapshot). */
  level: number;
  /** A snapshot ends here. */
  snapshot: boolean;
  /** `-timestamp` at `time` restores exactly this point (else ask by `-txid`). */
  byTimestamp: boolean;
}

export interface TimelineWindow {
  level: number;
  from: Date;
  to: Date;
  points: number;
}

export interface TimelineBranch {
  dest: string;
  txid: bigint;
  time: Date;
  createdAt: Date;
}

export interface Timeline {
  /** Restorable points, oldest first. */
  points: RestorePoint[];
  /** Per level, the span of points whose finest level it is. */
  windows: TimelineWindow[];
  branches: TimelineBranch[];
}

/** The restore points of `files` (one replica's listing of levels 0..9). */
export function buildTimeline(files: ReplicaFile[], branches: BranchManifest[] = []): Timeline {
  const ends = new Map<bigint, ReplicaFile[]>();
  for (const f of files) {
    if (f.level < 0 || f.level > SNAPSHOT_LEVEL) continue;
    const at = ends.get(f.maxTXID);
    if (at) at.push(f);
    else ends.set(f.maxTXID, [f]);
  }
  const txids = [...ends.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // a point is reachable when a snapshot ends there, or a file ending there continues a
  // reachable point: starts at or before it + 1 (the planner's rule). The newest reachable
  // point before it is the best candidate, so one ascending pass decides every point.
  const reached: bigint[] = [];
  const points: RestorePoint[] = [];
  for (const t of txids) {
    const fs = ends.get(t)!;
    const prev = reached.length > 0 ? reached[reached.length - 1] : null;
    const ok = fs.some((f) => f.minTXID === 1n || (prev !== null && f.minTXID <= prev + 1n));
    if (!ok) continue;
    reached.push(t);
    const level = Math.min(...fs.map((f) => f.level));
    const time = new Date(Math.max(...fs.map((f) => f.createdAt.getTime())));
    points.push({
      txid: t,
      time,
      level,
      snapshot: fs.some((f) => f.minTXID === 1n),
      byTimestamp: false,
    });
  }
  // -timestamp T restores the newest TXID among files created at or before T (plan.ts)
  const byTime = files
    .filter((f) => f.level >= 0 && f.level <= SNAPSHOT_LEVEL)
    .map((f) => ({ t: f.createdAt.getTime(), txid: f.maxTXID }))
    .sort((a, b) => a.t - b.t);
  let k = 0;
  let newest = 0n;
  for (const p of [...points].sort((a, b) => a.time.getTime() - b.time.getTime())) {
    while (k < byTime.length && byTime[k].t <= p.time.getTime()) {
      if (byTime[k].txid > newest) newest = byTime[k].txid;
      k++;
    }
    p.byTimestamp = newest === p.txid;
  }
  const windows: TimelineWindow[] = [];
  for (const p of points) {
    let w = windows.find((x) => x.level === p.level);
    if (!w) windows.push(w = { level: p.level, from: p.time, to: p.time, points: 0 });
    if (p.time < w.from) w.from = p.time;
    if (p.time > w.to) w.to = p.time;
    w.points++;
  }
  windows.sort((a, b) => a.level - b.level);
  return {
    points,
    windows,
    branches: branches.map((b) => ({
      dest: b.dest,
      txid: b.base.txid,
      time: b.base.time,
      createdAt: b.createdAt,
    })),
  };
}

/**
 * The state as of `time`: the newest point at or before it, or null (the
 * page picks the same; a point `-timestamp` does not reach is named by TXID).
 */
export function pointAt(t: Timeline, time: Date): RestorePoint | null {
  let best: RestorePoint | null = null;
  for (const p of t.points) {
    if (p.time.getTime() <= time.getTime() && (!best || p.txid > best.txid)) best = p;
  }
  return best;
}

/** What a level's points are, in words. */
export function granularity(level: number): string {
  return level === 0
    ? "every L0 file (each sync)"
    : level === SNAPSHOT_LEVEL
    ? "snapshots"
    : `L${level} boundaries`;
}

/** The timeline as JSON-ready data (TXIDs in strata's 16-digit hex, times ISO 8601). */
export function timelineJson(t: Timeline): Record<string, unknown> {
  const first = t.points[0] ?? null;
  const last = t.points[t.points.length - 1] ?? null;
  return {
    oldest: first && { txid: formatTXID(first.txid), time: first.time.toISOString() },
    newest: last && { txid: formatTXID(last.txid), time: last.time.toISOString() },
    windows: t.windows.map((w) => ({
      level: w.level,
      granularity: granularity(w.level),
      from: w.from.toISOString(),
      to: w.to.toISOString(),
      points: w.points,
    })),
    points: t.points.map((p) => ({
      txid: formatTXID(p.txid),
      time: p.time.toISOString(),
      level: p.level,
      snapshot: p.snapshot,
      byTimestamp: p.byTimestamp,
    })),
    branches: t.branches.map((b) => ({
      dest: b.dest,
      txid: formatTXID(b.txid),
      time: b.time.toISOString(),
      createdAt: b.createdAt.toISOString(),
    })),
  };
}

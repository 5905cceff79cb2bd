/**
 * The range of every numeric setting, by config key (and the flags that take
 * the same kind of value). The README's configuration section lists them.
 */

import type { DurationRange } from "./duration.ts";

const MS = 1;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** The longest interval a timer waits for (24 days, under the 2^31-1 ms a timer can hold). */
export const MAX_INTERVAL_MS = 576 * HOUR;
/** The longest retention (10 years: a comparison of file times, not a timer). */
export const MAX_RETENTION_MS = 87_600 * HOUR;

export const DURATION_LIMITS = {
  "monitor-interval": { min: 10 * MS, max: HOUR },
  "checkpoint-interval": { min: SECOND, max: MAX_INTERVAL_MS },
  "busy-timeout": { min: MS, max: HOUR, zero: "fail at once when the database is locked" },
  "sync-interval": { min: 10 * MS, max: MAX_INTERVAL_MS },
  "validation-interval": { min: 100 * MS, max: MAX_INTERVAL_MS, zero: "never" },
  "level interval": { min: SECOND, max: MAX_INTERVAL_MS },
  "snapshot interval": { min: SECOND, max: MAX_INTERVAL_MS },
  "snapshot retention": { min: SECOND, max: MAX_RETENTION_MS },
  "l0-retention": { min: SECOND, max: MAX_RETENTION_MS, zero: "as soon as L1 covers them" },
  "l0-retention-check-interval": { min: SECOND, max: MAX_INTERVAL_MS },
  "follow-interval": { min: 10 * MS, max: MAX_INTERVAL_MS },
  "control timeout": { min: MS, max: MAX_INTERVAL_MS },
  /** `verify -max-lag`: how far behind the local files a replica may be. */
  "max-lag": { min: SECOND, max: MAX_INTERVAL_MS },
  /** How often at most `heartbeat-url` is pinged (Litestream: at least 1m). */
  "heartbeat-interval": { min: SECOND, max: MAX_INTERVAL_MS },
  /** The final sync at stop (key and flag). */
  "shutdown-sync-timeout": {
    min: 100 * MS,
    max: HOUR,
    zero: "one attempt, without a time limit (as Litestream's 0)",
  },
} satisfies Record<string, DurationRange>;

/** An integer setting's range; 0 too when `zero` says what it means. */
export interface IntRange {
  min: number;
  max: number;
  zero?: string;
}

/** SQLite's largest page count. */
const MAX_PAGES = 4_294_967_294;

export const INT_LIMITS = {
  "min-checkpoint-page-count": { min: 1, max: MAX_PAGES },
  "truncate-page-n": { min: 1, max: MAX_PAGES, zero: "off" },
  "max-pending-files": { min: 2, max: 100_000, zero: "the default, 128" },
} satisfies Record<string, IntRange>;

/** "from 1 to 100000 (0: off)". */
export function intRangeText(r: IntRange): string {
  return `from ${r.min} to ${r.max}${r.zero !== undefined ? ` (0: ${r.zero})` : ""}`;
}

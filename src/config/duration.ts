/**
 * Go-style durations ("1s", "100ms", "1h30m") as milliseconds, and the range
 * a setting's duration must fall in: a value outside it (too short to be
 * anything but a busy loop, too long for a timer, or not a number at all) is
 * refused with the range, never clamped or wrapped.
 */

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** The longest wait a JavaScript timer honours (2^31-1 ms); longer ones fire at once. */
export const TIMER_LIMIT_MS = 2 ** 31 - 1;

/**
 * A duration in ms, or null when `s` is not one: not Go syntax, negative, or
 * so long it is not a finite number (a 400-digit value).
 */
export function parseDuration(s: string): number | null {
  const t = s.trim();
  if (t === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < t.length) {
    re.lastIndex = pos;
    const m = re.exec(t);
    if (!m) return null;
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  return pos > 0 && Number.isFinite(total) ? total : null;
}

/** `5400000` → `1h30m`, `100` → `100ms` (whole ms; as Go prints, without trailing zero units). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return rest > 0 ? `${out}${rest}ms` : out;
}

/** What a setting accepts: `min`..`max` ms, and 0 too when `zero` says what 0 means. */
export interface DurationRange {
  min: number;
  max: number;
  /** What 0 means for this setting ("never", "off"), when 0 is allowed. */
  zero?: string;
}

export class DurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DurationError";
  }
}

/**
 * Parses `text` as a duration within `range`; throws DurationError saying why
 * not (the caller adds the key or flag name).
 */
export function parseDurationIn(text: string, range: DurationRange): number {
  const ms = parseDuration(text);
  if (ms === null) {
    const why = /^\s*-/.test(text)
      ? `: must not be negative (${rangeText(range)})`
      : /\d{16,}/.test(text)
      ? `: too large (${rangeText(range)})`
      : " (use e.g. 100ms, 1s, 5m, 1h30m)";
    throw new DurationError(`invalid duration ${JSON.stringify(text)}${why}`);
  }
  if (ms === 0 && range.zero !== undefined) return 0;
  if (ms < range.min || ms > range.max) {
    throw new DurationError(`${JSON.stringify(text)} is out of range: ${rangeText(range)}`);
  }
  return ms;
}

/** "from 10ms to 1h (0: never)". */
export function rangeText(range: DurationRange): string {
  const zero = range.zero !== undefined ? ` (0: ${range.zero})` : "";
  return `from ${formatDuration(range.min)} to ${formatDuration(range.max)}${zero}`;
}

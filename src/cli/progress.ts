/**
 * Progress display for long commands: on a terminal a bar redrawn in place
 * (bytes, rate, ETA); otherwise a plain line every few seconds through the
 * logger (so it honours the log level and stays valid JSON with `type: json`).
 * Library code reports through `ProgressFn` (src/progress.ts).
 */

import { log } from "../log.ts";
import type { ProgressFn } from "../progress.ts";

export interface ProgressOutput {
  isTerminal(): boolean;
  writeSync(p: Uint8Array): number;
}

export interface ProgressOptions {
  /** Where to draw (default stderr). */
  out?: ProgressOutput;
  /** Plain-line interval when `out` is not a terminal (default 5 s). */
  intervalMs?: number;
  /** Where plain lines go when `out` is not a terminal (default: the logger, level info). */
  line?: (text: string) => void;
  /** Clock in ms (injected by tests). */
  now?: () => number;
}

export interface ProgressDisplay {
  /** Give this to the library code doing the work. */
  report: ProgressFn;
  /** Draws the final state (call once when the work is done or failed). */
  finish(ok?: boolean): void;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 24;

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function formatDuration(s: number): string {
  if (!isFinite(s)) return "?";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One line of progress: `label 45% 12.0 MiB / 27.0 MiB 5.1 MiB/s ETA 3s`. */
export function progressLine(
  label: string,
  done: number,
  total: number,
  elapsedMs: number,
  bar: boolean,
): string {
  const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const parts = [label];
  if (total > 0) {
    const frac = Math.min(1, done / total);
    if (bar) {
      const fill = Math.round(frac * BAR_WIDTH);
      parts.push(`[${"#".repeat(fill)}${"-".repeat(BAR_WIDTH - fill)}]`);
    }
    parts.push(`${(frac * 100).toFixed(0)}%`, `${formatBytes(done)} / ${formatBytes(total)}`);
  } else {
    parts.push(formatBytes(done));
  }
  parts.push(`${formatBytes(Math.round(rate))}/s`);
  if (total > 0 && done < total) {
    parts.push(`ETA ${rate > 0 ? formatDuration((total - done) / rate) : "?"}`);
  } else if (total > 0) {
    parts.push(`in ${formatDuration(elapsedMs / 1000)}`);
  }
  return parts.join(" ");
}

/** A progress display for `label`: a bar on a terminal, periodic lines otherwise. */
export function progressDisplay(label: string, opts: ProgressOptions = {}): ProgressDisplay {
  const out = opts.out ?? Deno.stderr;
  const now = opts.now ?? (() => Date.now());
  const tty = out.isTerminal();
  const interval = tty ? REDRAW_MS : opts.intervalMs ?? 5000;
  const enc = new TextEncoder();
  const start = now();
  let last = start;
  let done = 0;
  let total = 0;
  let finished = false;
  const write = (s: string) => {
    try {
      out.writeSync(enc.encode(s));
    } catch { /* output closed: progress is best effort */ }
  };
  const plain = opts.line ?? ((text: string) => log("info", text));
  const draw = (final: boolean) => {
    const line = progressLine(label, done, total, now() - start, tty);
    if (tty) write(`\r${line}\x1b[K${final ? "\n" : ""}`);
    else plain(line);
  };
  return {
    report(d, t) {
      done = d;
      total = t;
      if (finished) return;
      const n = now();
      if (n - last >= interval) {
        last = n;
        draw(false);
      }
    },
    finish(ok = true) {
      if (finished) return;
      finished = true;
      if (ok && total > 0) done = total;
      if (ok || tty) draw(true);
    },
  };
}

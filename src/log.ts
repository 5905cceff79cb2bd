/** Structured logging: one line per event, with a level; text or JSON. */

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A level name (any case; Litestream's `trace` is strata's `debug`), or null. */
export function parseLogLevel(s: string): LogLevel | null {
  const l = s.trim().toLowerCase();
  if (l === "trace") return "debug";
  if (l === "warning") return "warn";
  return l in ORDER ? l as LogLevel : null;
}

/** `LOG_LEVEL` from the environment, when set to a level. */
function envLevel(): LogLevel | null {
  const v = Deno.env.get("LOG_LEVEL");
  return v ? parseLogLevel(v) : null;
}

let minLevel: LogLevel = envLevel() ?? "info";
let overridden = false;
let json = false;
/** `logging.stderr: false`: log lines go to stdout, as Litestream's do by default. */
let toStdout = false;

/**
 * The config file's `logging` settings. As in Litestream, `LOG_LEVEL` in the
 * environment wins over the file's level, and `-log-level` (see
 * `overrideLogLevel`) over both.
 */
export function configureLogging(
  opts: { level?: LogLevel; type?: "text" | "json"; stderr?: boolean },
): void {
  if (opts.level && !overridden && envLevel() === null) minLevel = opts.level;
  if (opts.type) json = opts.type === "json";
  if (opts.stderr !== undefined) toStdout = !opts.stderr;
}

/** The `-log-level` flag: wins over `LOG_LEVEL` and the config file. */
export function overrideLogLevel(level: LogLevel): void {
  minLevel = level;
  overridden = true;
}

export function isLogLevel(s: string): s is LogLevel {
  return s in ORDER;
}

function fmtValue(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (ORDER[level] < ORDER[minLevel]) return;
  const time = new Date().toISOString();
  let line: string;
  if (json) {
    const obj: Record<string, unknown> = { time, level: level.toUpperCase(), msg };
    for (const [k, v] of Object.entries(fields)) {
      obj[k] = typeof v === "bigint" ? v.toString() : v instanceof Error ? v.message : v;
    }
    line = JSON.stringify(obj);
  } else {
    const kv = Object.entries(fields).map(([k, v]) => `${k}=${fmtValue(v)}`).join(" ");
    line = `${time} ${level.toUpperCase()} ${msg}${kv ? " " + kv : ""}`;
  }
  if (toStdout) console.log(line);
  else console.error(line);
}

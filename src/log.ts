/** Structured logging: one line per event, with a level; text or JSON. */

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let minLevel: LogLevel = (Deno.env.get("LOG_LEVEL")?.toLowerCase() as LogLevel) in ORDER
  ? Deno.env.get("LOG_LEVEL")!.toLowerCase() as LogLevel
  : "info";
let json = false;

export function configureLogging(opts: { level?: LogLevel; type?: "text" | "json" }): void {
  if (opts.level) minLevel = opts.level;
  if (opts.type) json = opts.type === "json";
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
  console.error(line);
}

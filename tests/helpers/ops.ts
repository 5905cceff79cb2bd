/** Helpers for the operations tests: polling with a bound, Prometheus text, small configs. */

import { join } from "node:path";
import { strata } from "./strata.ts";

/** Polls `fn` until it returns a truthy value; throws naming `what` after `seconds`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T> | T,
  seconds = 30,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}${last ? `: ${last}` : ""}`);
}

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus' text format (samples only). */
export function parseProm(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2];
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample `name` whose labels include `labels` (undefined when absent). */
export function sample(
  samples: PromSample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  )?.value;
}

export async function scrape(port: number): Promise<PromSample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return parseProm(await res.text());
}

/** Runs python3 with `code` (argv[1:] = `args`); its stdout. */
export async function python(code: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command("python3", {
    args: ["-c", code, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (r.code !== 0) throw new Error(`python failed: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

/** Appends one row to table `notes` of `db` (a WAL database), from its own process. */
export async function addNote(db: string, note: string): Promise<void> {
  await python(
    `import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, note TEXT)")
con.execute("INSERT INTO notes (note) VALUES (?)", (sys.argv[2],))
con.commit()
con.close()`,
    db,
    note,
  );
}

/** The notes of `db`, in order. */
export async function notesOf(db: string): Promise<string[]> {
  const out = await python(
    `import sqlite3, sys, json
con = sqlite3.connect(sys.argv[1])
print(json.dumps([r[0] for r in con.execute("SELECT note FROM notes ORDER BY id")]))`,
    db,
  );
  return JSON.parse(out);
}

/** Restores `replicaUrl` into `dir/name` and returns the path (throws on failure). */
export async function restoreTo(dir: string, name: string, replicaUrl: string): Promise<string> {
  const out = join(dir, name);
  const r = await strata(["restore", "-o", out, replicaUrl]);
  if (r.code !== 0) throw new Error(`restore ${replicaUrl} failed: ${r.stderr}`);
  return out;
}

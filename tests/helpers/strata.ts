/** Runs strata as a separate process, as a user would. */

import { databaseChecksumOfPages } from "../../src/ltx/checksum.ts";
import { join } from "node:path";
import { PROJECT_ROOT } from "./vectors.ts";

const MAIN = join(PROJECT_ROOT, "main.ts");
/** Restores in tests use a cache of their own (network replicas only), not the user's. */
const CACHE_ENV = { STRATA_CACHE_DIR: join(Deno.env.get("TMPDIR") ?? "/tmp", "strata-test-cache") };

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `strata ARGS…` to completion. */
export async function strata(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Output> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...CACHE_ENV, ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** A `strata replicate` running in the background; `stop()` sends SIGINT and waits. */
export class Replicating {
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #drained: Promise<void>;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "replicate", ...args],
      env: { NO_COLOR: "1", ...CACHE_ENV, ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (s: ReadableStream<Uint8Array>, to: "out" | "err") => {
      const dec = new TextDecoder();
      for await (const c of s) {
        if (to === "out") this.#stdout += dec.decode(c, { stream: true });
        else this.#stderr += dec.decode(c, { stream: true });
      }
    };
    this.#drained = Promise.all([
      collect(this.#child.stdout, "out"),
      collect(this.#child.stderr, "err"),
    ]).then(() => {});
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** What it logged so far (stderr). */
  get log(): string {
    return this.#stderr;
  }

  /**
   * Waits until its log matches `pattern` (by default: replication has started, its initial
   * capture done), however slow the machine; throws with the log when it exits first or after
   * `ms`. `since`: only the log after that many characters counts.
   */
  async waitForLog(
    pattern: RegExp = /INFO replicating db=/,
    ms = 90_000,
    since = 0,
  ): Promise<void> {
    let exited = false;
    this.#child.status.then(() => (exited = true));
    const end = Date.now() + ms;
    while (!pattern.test(this.#stderr.slice(since))) {
      if (exited || Date.now() > end) {
        throw new Error(
          `strata replicate ${
            exited ? "exited" : "timed out"
          } before logging ${pattern}:\n${this.#stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: Deno.Signal = "SIGINT"): Promise<Output> {
    try {
      this.#child.kill(signal);
    } catch { /* already exited */ }
    const status = await this.#child.status;
    await this.#drained;
    return { code: status.code, stdout: this.#stdout, stderr: this.#stderr };
  }
}

/** Runs the Python writer (a separate app process). */
export async function runWriter(
  db: string,
  phase: string,
  seed: number,
  marks: string,
): Promise<void> {
  const r = await new Deno.Command("python3", {
    args: [join(PROJECT_ROOT, "tests/helpers/writer.py"), db, phase, String(seed), marks],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`writer failed: ${new TextDecoder().decode(r.stderr)}`);
}

export interface Mark {
  label: string;
  time: number;
  digest: string;
}

export async function readMarks(path: string): Promise<Mark[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

/** Digest of a database's rows, computed by Python exactly as the writer does. */
export async function digestOf(db: string): Promise<{ digest: string; integrity: string }> {
  const code = `
import hashlib, sqlite3, sys, json
con = sqlite3.connect(sys.argv[1])
h = hashlib.sha256()
for table in ("items", "log"):
    for row in con.execute(f"SELECT * FROM {table} ORDER BY id"):
        h.update(repr(row).encode())
print(json.dumps({"digest": h.hexdigest(), "integrity": con.execute("PRAGMA integrity_check").fetchone()[0]}))
`;
  const r = await new Deno.Command("python3", {
    args: ["-c", code, db],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`digest failed: ${new TextDecoder().decode(r.stderr)}`);
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

/** The database checksum of a database file no connection has open. */
export async function fileChecksum(path: string): Promise<bigint> {
  return bytesChecksum(await Deno.readFile(path));
}

/** The database checksum of a whole database file's bytes (page size from its header). */
export function bytesChecksum(bytes: Uint8Array): bigint {
  const ps = ((bytes[16] << 8) | bytes[17]) === 1 ? 65536 : (bytes[16] << 8) | bytes[17];
  const pages = [];
  for (let i = 0; i < bytes.length; i += ps) pages.push(bytes.subarray(i, i + ps));
  return databaseChecksumOfPages(pages, ps);
}

/**
 * The app writes a database (`runWriter` phase "more", `seed`), then `strata
 * replicate` runs into `url` until `ready` holds (polled, 60 s at most) and
 * stops cleanly.
 */
export async function writeAndReplicate(
  db: string,
  seed: number,
  url: string,
  ready: () => Promise<boolean>,
  env: Record<string, string> = {},
): Promise<void> {
  await runWriter(db, "more", seed, `${db}.marks`);
  const rep = new Replicating([db, url], env);
  const end = Date.now() + 60_000;
  let waited: Error | null = null;
  while (!(await ready())) {
    if (Date.now() > end) {
      waited = new Error(`timed out waiting for a first file in ${url}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const stopped = await rep.stop("SIGINT");
  if (waited) throw waited;
  if (stopped.code !== 0) throw new Error(`strata replicate failed: ${stopped.stderr}`);
}

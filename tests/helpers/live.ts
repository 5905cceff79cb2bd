/**
 * Running processes for replica-failure tests: an app inserting rows from its
 * own python3 process, and a `strata replicate` whose log is readable while it
 * runs. Each is stopped by its own PID.
 */

import { join } from "node:path";
import { PROJECT_ROOT } from "./vectors.ts";
import type { ReplicaClient } from "../../src/storage/mod.ts";
import { restoreTarget } from "../../src/restore/mod.ts";
import { S3ReplicaClient } from "../../src/storage/s3_client.ts";
import { digestOf, runWriter, strata } from "./strata.ts";

const MAIN = join(PROJECT_ROOT, "main.ts");

/** Waits (polling) until `fn` is true; throws naming `what` after `ms`. */
export async function waitFor(
  what: string,
  fn: () => boolean | Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const APP = `
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("PRAGMA busy_timeout=30000")
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)")
con.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at REAL, what TEXT)")
def tx(sql, args):
    # BEGIN IMMEDIATE and retry: a busy database never ends the app
    while True:
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute(sql, args)
            con.execute("COMMIT")
            return
        except sqlite3.OperationalError:
            try:
                con.execute("ROLLBACK")
            except sqlite3.OperationalError:
                pass
            time.sleep(0.01)
n = 0
while True:
    n += 1
    tx("INSERT INTO items (name, body, n) VALUES (?, randomblob(?), ?)", ("row", 200 + n % 3000, n))
    if n % 7 == 0:
        tx("UPDATE items SET n = n + 1 WHERE id = ?", (n // 2,))
    time.sleep(float(sys.argv[2]))
`;

/** The app: a python3 process inserting a row every `pauseS` seconds until stopped. */
export class App {
  readonly #child: Deno.ChildProcess;
  constructor(db: string, pauseS = 0.02) {
    this.#child = new Deno.Command("python3", {
      args: ["-c", APP, db, String(pauseS)],
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* exited */ }
    await this.#child.status;
  }
}

/** Creates the app's database (WAL mode, its tables) from a python3 process. */
export async function createAppDb(db: string): Promise<void> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3,sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, body BLOB, n INTEGER)")
con.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at REAL, what TEXT)")
con.execute("INSERT INTO items (name, body, n) VALUES ('first', randomblob(100), 0)")`,
      db,
    ],
  }).output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
}

/** `strata replicate ARGS` whose stderr (the log) can be read while it runs. */
export class LiveStrata {
  readonly #child: Deno.ChildProcess;
  #log = "";
  readonly #drained: Promise<void>;
  readonly #stdout: Promise<string>;

  constructor(args: string[], env: Record<string, string> = {}) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "replicate", ...args],
      env: {
        NO_COLOR: "1",
        ...(Deno.env.get("STRATA_TEST_DEBUG") ? { LOG_LEVEL: "debug" } : {}),
        ...env,
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#stdout = new Response(child.stdout).text();
    this.#drained = (async () => {
      for await (const s of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#log += s;
      }
    })();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** The log so far (JSON lines or text, as strata writes it). */
  get log(): string {
    return this.#log;
  }

  /** Sends `signal` and waits for the exit; the code and the whole log. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<{ code: number; log: string }> {
    try {
      this.#child.kill(signal);
    } catch { /* exited */ }
    const { code } = await this.#child.status;
    await this.#drained;
    await this.#stdout;
    const keep = Deno.env.get("STRATA_TEST_DEBUG");
    if (keep) await Deno.writeTextFile(`/tmp/strata-test-${this.pid}.log`, this.#log);
    return { code, log: this.#log };
  }

  /** Waits for the exit without a signal. */
  async exited(): Promise<{ code: number; log: string }> {
    const { code } = await this.#child.status;
    await this.#drained;
    await this.#stdout;
    return { code, log: this.#log };
  }
}

/**
 * The digest of the replica's latest state (restored into `dir`), or null
 * when it cannot be restored now.
 */
export async function replicaDigest(client: ReplicaClient, dir: string): Promise<string | null> {
  const out = join(dir, `restored-${crypto.randomUUID().slice(0, 8)}.db`);
  try {
    await restoreTarget(client, {}, out, { integrityCheck: "quick" });
    return (await digestOf(out)).digest;
  } catch {
    return null;
  } finally {
    for (const p of [out, `${out}-wal`, `${out}-shm`]) await Deno.remove(p).catch(() => {});
  }
}

/** Waits until the replica restores to exactly the database's current rows. */
export async function waitForReplicaEqual(
  client: ReplicaClient,
  db: string,
  dir: string,
  ms = 60_000,
): Promise<void> {
  const want = (await digestOf(db)).digest;
  let got: string | null = null;
  await waitFor(`replica ${client.location} to equal ${db}`, async () => {
    got = await replicaDigest(client, dir);
    return got === want;
  }, ms).catch((e) => {
    throw new Error(`${(e as Error).message} (last restore: ${got ?? "failed"})`);
  });
}

/** Runs `cmd ARGS…` quietly; true when it exited 0. */
export async function run(cmd: string, ...args: string[]): Promise<boolean> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  return out.code === 0;
}

/** A client of `bucket` (path "app") on a test S3 server, to check what strata wrote there. */
export function s3TestClient(endpoint: string, bucket: string): S3ReplicaClient {
  return new S3ReplicaClient({
    bucket,
    path: "app",
    endpoint,
    forcePathStyle: true,
    accessKeyId: "k",
    secretAccessKey: "s",
  });
}

/**
 * An app (its own process) writes a database; `strata replicate -once` puts it
 * into `url`; `strata restore` brings it back: the restore must hold exactly
 * the app's rows, and no output may contain `secret`.
 */
export async function replicateOnceAndRestore(
  url: string,
  dir: string,
  secret: string,
): Promise<void> {
  const db = join(dir, "app.db");
  await createAppDb(db);
  await runWriter(db, "more", 3, join(dir, "marks.jsonl"));
  const rep = await strata(["replicate", "-once", db, url]);
  if (rep.code !== 0) throw new Error(`replicate -once failed: ${rep.stderr}`);
  const out = join(dir, "restored.db");
  const r = await strata(["restore", "-no-progress", "-o", out, url]);
  if (r.code !== 0) throw new Error(`restore failed: ${r.stderr}`);
  const [got, want] = [(await digestOf(out)).digest, (await digestOf(db)).digest];
  if (got !== want) throw new Error(`the restore differs from the database: ${got} != ${want}`);
  for (const s of [rep.stdout, rep.stderr, r.stdout, r.stderr]) {
    if (s.includes(secret)) throw new Error(`a secret reached the output:\n${s}`);
  }
}

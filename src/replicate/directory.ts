/**
 * Directory replication: finding the SQLite databases beneath a directory
 * whose file names match a pattern, and watching it for new and removed ones.
 *
 * Reading a file's header opens and closes a descriptor on it, and closing any
 * descriptor of a database releases every SQLite lock this process holds on
 * it (DESIGN.md, SQLite hazards): databases this process already replicates
 * are skipped (`skip`) before anything is opened.
 */

import { basename, join, relative, sep } from "node:path";
import { log } from "../log.ts";

export interface DirectoryOptions {
  dir: string;
  /** Matches the file name (see `globToRegExp`). */
  pattern: RegExp;
  recursive: boolean;
  /** True for paths this process already replicates: never opened here. */
  skip: (path: string) => boolean;
}

const SQLITE_HEADER = "SQLite format 3\0";

/** True when `path` is a regular file starting with SQLite's header. */
export async function isSQLiteDatabase(path: string): Promise<boolean> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch {
    return false;
  }
  try {
    const head = new Uint8Array(16);
    let got = 0;
    while (got < 16) {
      const n = await f.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    return got === 16 && new TextDecoder().decode(head) === SQLITE_HEADER;
  } catch {
    return false;
  } finally {
    f.close();
  }
}

/** SQLite's own files and strata's meta directories, never databases to replicate. */
function isAuxiliary(name: string): boolean {
  return /-(wal|shm|journal)$/.test(name) || /-strata$/.test(name);
}

function candidate(opts: DirectoryOptions, path: string): boolean {
  const name = basename(path);
  return !isAuxiliary(name) && opts.pattern.test(name) && !opts.skip(path);
}

/** The databases beneath `opts.dir` (sorted), skipping what `opts.skip` says. */
export async function findDatabases(opts: DirectoryOptions, under = opts.dir): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (e) {
      if (dir === opts.dir) throw new Error(`directory ${dir}: ${(e as Error).message}`);
      return; // removed meanwhile
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory) {
        if (opts.recursive && !isAuxiliary(e.name)) await walk(path);
      } else if (e.isFile && candidate(opts, path) && await isSQLiteDatabase(path)) {
        out.push(path);
      }
    }
  };
  await walk(under);
  return out.sort();
}

export interface DirectoryWatcher {
  /** Settles once the databases already there have been passed to `onFound`. */
  readonly ready: Promise<void>;
  close(): void;
  /** Settles when the watcher has stopped. */
  readonly done: Promise<void>;
}

/**
 * Watches `opts.dir`: the databases already there, then each matching file
 * that becomes a SQLite database, are passed to `onFound` (once; `skip` must
 * be true for it as soon as `onFound` is called), a tracked path that
 * disappears to `onRemoved`. New subdirectories are scanned when `recursive`.
 * All examining and adding runs one at a time, so no header is read while
 * the same database is being opened for replication.
 */
export function watchDirectory(
  opts: DirectoryOptions & {
    onFound: (path: string) => Promise<void>;
    onRemoved: (path: string) => Promise<void>;
    /** Delay before a changed path is examined (lets a new file get its header). */
    settleMs?: number;
  },
): DirectoryWatcher {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(opts.dir, { recursive: opts.recursive });
  } catch (e) {
    throw new Error(`directory ${opts.dir}: cannot watch it: ${(e as Error).message}`);
  }
  const pending = new Map<string, ReturnType<typeof setTimeout>>();
  const settle = opts.settleMs ?? 50;
  let closed = false;
  let queue: Promise<void> = Promise.resolve();
  const serial = (fn: () => Promise<void>) => (queue = queue.then(fn));

  const examine = async (path: string) => {
    if (closed) return;
    try {
      let info: Deno.FileInfo | null = null;
      try {
        info = await Deno.stat(path);
      } catch { /* gone */ }
      if (info === null) {
        if (opts.skip(path)) await opts.onRemoved(path);
        return;
      }
      if (info.isDirectory) {
        if (path !== opts.dir && (!opts.recursive || isAuxiliary(basename(path)))) return;
        for (const p of await findDatabases(opts, path)) {
          if (!closed && !opts.skip(p)) await opts.onFound(p);
        }
        return;
      }
      if (candidate(opts, path) && await isSQLiteDatabase(path) && !closed && !opts.skip(path)) {
        await opts.onFound(path);
      }
    } catch (e) {
      log("error", "directory replication: could not add a database", { path, error: e });
    }
  };
  const ready = serial(() => examine(opts.dir));

  const done = (async () => {
    try {
      for await (const ev of watcher) {
        for (const path of ev.paths) {
          // SQLite's own files, and everything in strata's meta directories (busy with captures)
          if (relative(opts.dir, path).split(sep).some(isAuxiliary)) continue;
          // a tracked database only matters when it goes away
          if (opts.skip(path) && ev.kind !== "remove" && ev.kind !== "rename") continue;
          clearTimeout(pending.get(path));
          pending.set(
            path,
            setTimeout(() => {
              pending.delete(path);
              serial(() => examine(path));
            }, settle),
          );
        }
      }
    } catch (e) {
      if (!closed) log("error", "directory watch failed", { dir: opts.dir, error: e });
    }
  })();

  return {
    ready,
    close() {
      closed = true;
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
      try {
        watcher.close();
      } catch { /* closed */ }
    },
    done,
  };
}

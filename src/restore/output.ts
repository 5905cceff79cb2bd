/**
 * Putting a restored database at its output path. The database is written
 * into a temporary file of its own (a unique name beside the output), fsynced
 * and checked; only then does it appear at the output path, whole, in one
 * step:
 *
 * - By default the output must not exist: the file is hard-linked to the
 *   output path, which fails when something is there already, so of several
 *   restores racing for one output exactly one places its file and the
 *   others fail with `OutputExistsError` (never a 0-byte or partial file).
 * - With `replace` (`restore -force`) the old database stays untouched until
 *   the new one is complete and verified. Then its `-wal` and `-journal` (and
 *   `-shm`) are moved aside, the new file is renamed over it, and the moved
 *   files are deleted: an old WAL never meets the new file, and a crash in
 *   between leaves the old WAL as `<out>-wal.<random>.replaced`, not lost.
 *
 * A new output gets mode 0600 (a copy of the data is never more readable than
 * the source may be); a replaced one keeps its mode and, when permitted, its
 * owner.
 */

import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { RestoreError } from "./apply.ts";
import { log } from "../log.ts";
import { exists, syncDir } from "../fsutil.ts";

export type IntegrityCheck = "none" | "quick" | "full";

/** Mode of a restored database that replaces nothing. */
export const RESTORED_FILE_MODE = 0o600;

export class OutputExistsError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(
      `restore output ${path} exists (another restore or process created it while this one ran); it was left as it is: pass -force to replace it, or -o another path`,
    );
    this.name = "OutputExistsError";
    this.path = path;
  }
}

export interface OutputOptions {
  /** Replace an existing output (`-force`); without it the output must not exist. */
  replace?: boolean;
}

function randomSuffix(): string {
  return crypto.randomUUID().slice(0, 8);
}

/**
 * Writes a restored database: `fill` writes it into a fresh temporary file
 * (open at `fd`); then fsync, the integrity check, and placement at `outPath`
 * as the module comment says. On any failure the temporary file is removed
 * and `outPath` is as it was.
 */
export async function writeRestoredDatabase<T>(
  outPath: string,
  check: IntegrityCheck,
  fill: (fd: number) => Promise<T>,
  opts: OutputOptions = {},
): Promise<T> {
  await Deno.mkdir(dirname(outPath), { recursive: true });
  const tmp = `${outPath}.${randomSuffix()}.tmp`;
  const fd = fs.openSync(tmp, "wx+", RESTORED_FILE_MODE);
  let closed = false;
  try {
    const result = await fill(fd);
    // the fsync (on a pool thread) and the integrity check (reading the pages from the page
    // cache) run at once; the descriptor closes after both (closing a descriptor of a file
    // drops every POSIX lock this process holds on it, SQLite's too)
    const synced = new Promise<void>((resolve, reject) =>
      fs.fsync(fd, (e) => (e ? reject(e) : resolve()))
    );
    try {
      await integrityCheck(tmp, check);
    } finally {
      await synced.catch((e) => {
        throw new RestoreError(
          `restored database ${tmp} could not be synced to disk: ${e.message}`,
        );
      });
    }
    fs.closeSync(fd);
    closed = true;
    if (opts.replace) await replaceWith(tmp, outPath);
    else await placeExclusively(tmp, outPath);
    await syncDir(dirname(outPath));
    return result;
  } finally {
    if (!closed) {
      try {
        fs.closeSync(fd);
      } catch { /* closed */ }
    }
    for (const p of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) {
      await Deno.remove(p).catch(() => {});
    }
  }
}

/** Links `tmp` at `out`, which must not exist; `tmp` is left for the caller to remove. */
async function placeExclusively(tmp: string, out: string): Promise<void> {
  try {
    await Deno.link(tmp, out);
    return;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) throw new OutputExistsError(out);
    if (await exists(out)) throw new OutputExistsError(out);
    // a filesystem without hard links: the check above and a rename, not exclusive
    log("warn", "the output's filesystem has no hard links; placing the restore by rename", {
      path: out,
      error: e,
    });
  }
  await Deno.rename(tmp, out);
}

/**
 * Renames `tmp` over `out`, keeping `out`'s mode (and owner, when allowed);
 * the old database's -wal, -journal and -shm are moved aside first and
 * deleted after (see the module comment).
 */
async function replaceWith(tmp: string, out: string): Promise<void> {
  const old = await Deno.stat(out).catch(() => null);
  if (old?.mode != null) await Deno.chmod(tmp, old.mode & 0o7777);
  if (old?.uid != null && old.gid != null) {
    await Deno.chown(tmp, old.uid, old.gid).catch(() => {}); // only root may give files away
  }
  const aside: [string, string][] = [];
  try {
    for (const suffix of ["-wal", "-journal", "-shm"]) {
      const p = `${out}${suffix}`;
      if (!(await exists(p))) continue;
      const q = `${p}.${randomSuffix()}.replaced`;
      await Deno.rename(p, q);
      aside.push([p, q]);
    }
    await Deno.rename(tmp, out);
  } catch (e) {
    for (const [p, q] of aside) await Deno.rename(q, p).catch(() => {});
    throw e;
  }
  await syncDir(dirname(out));
  for (const [, q] of aside) await Deno.remove(q).catch(() => {});
}

/** Runs the integrity check on a closed database file and leaves it without -wal/-shm. */
export async function integrityCheck(path: string, mode: IntegrityCheck): Promise<void> {
  if (mode === "none") return;
  const db = new DatabaseSync(path);
  try {
    const pragma = mode === "full" ? "integrity_check" : "quick_check";
    const rows = db.prepare(`PRAGMA ${pragma}`).all() as Record<string, string>[];
    const results = rows.map((r) => Object.values(r)[0]);
    if (results.length !== 1 || results[0] !== "ok") {
      throw new RestoreError(
        `restored database fails ${pragma}: ${results.slice(0, 5).join("; ")}`,
      );
    }
    // leave the file as a plain database file: no -wal/-shm behind
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
  await Deno.remove(`${path}-wal`).catch(() => {});
  await Deno.remove(`${path}-shm`).catch(() => {});
}

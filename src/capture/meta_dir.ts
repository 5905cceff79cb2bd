/**
 * The local meta directory's guards: one `strata replicate` process at a
 * time (an exclusive lock, released when the process ends however it ends),
 * modes no wider than the database's, and the identity (device and inode) of
 * the database file the newest local files were captured from.
 */

import * as fs from "node:fs";
import { join } from "node:path";
import { DatabaseOpenError } from "../sqlite/mod.ts";
import { modesFor } from "../storage/file_modes.ts";
import { writeFileAtomic } from "../fsutil.ts";

const LOCK_FILE = "replicate.lock";
const IDENTITY_FILE = "db-identity";

/** A file's identity as `device:inode`, or null when nothing is at `path`. */
export function fileIdentity(path: string): string | null {
  try {
    const s = fs.statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/**
 * Creates the meta directory (and `sub`) no more readable than the database,
 * narrowing an existing one: its files are copies of the database's pages.
 */
export async function prepareMetaDir(metaPath: string, sub: string, dbMode: number | null) {
  const dir = dbMode === null ? 0o777 : modesFor(dbMode).dir;
  await Deno.mkdir(join(metaPath, sub), { recursive: true, mode: dir });
  if (dbMode !== null) await Deno.chmod(metaPath, dir);
}

/** The exclusive hold of a meta directory by this process; `release` ends it. */
export class MetaDirLock {
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Takes the meta directory or refuses by name: two replicators capturing
   * one database into one meta directory would interleave their files.
   */
  static async acquire(metaPath: string, dbPath: string): Promise<MetaDirLock> {
    const path = join(metaPath, LOCK_FILE);
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    let held = false;
    try {
      held = await file.tryLock(true);
      if (!held) {
        const holder = new TextDecoder().decode(await readAll(file)).trim();
        throw new DatabaseOpenError(
          dbPath,
          `another strata replicate process${
            holder ? ` (${holder})` : ""
          } is capturing it into ${metaPath}; stop it first, or give this one its own database`,
        );
      }
      await file.truncate(0);
      await file.write(new TextEncoder().encode(`pid ${Deno.pid}\n`));
      return new MetaDirLock(file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  release(): void {
    try {
      this.#file.close(); // closing the descriptor drops the lock
    } catch { /* already released */ }
  }
}

async function readAll(file: Deno.FsFile): Promise<Uint8Array> {
  const buf = new Uint8Array(256);
  const n = await file.read(buf);
  return buf.subarray(0, n ?? 0);
}

/** The identity saved by `saveIdentity`, or null. */
export async function savedIdentity(metaPath: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(join(metaPath, IDENTITY_FILE))).trim() || null;
  } catch {
    return null;
  }
}

/** Records which database file (device:inode) the local files were captured from. */
export async function saveIdentity(metaPath: string, identity: string, mode = 0o666) {
  await writeFileAtomic(join(metaPath, IDENTITY_FILE), async (f) => {
    await f.write(new TextEncoder().encode(identity + "\n"));
  }, mode);
}

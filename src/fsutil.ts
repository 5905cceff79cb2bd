/** Durable file writes: tmp + fsync + rename + directory fsync. */

import { dirname } from "node:path";

/** fsyncs a directory so a rename in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // some platforms cannot open directories; the rename is still atomic
  }
}

/**
 * Writes a file atomically: `produce` writes into an open tmp file, which is
 * then fsynced and renamed over `path`. On any error the tmp file is removed
 * and `path` is untouched. `mode` (before the umask) is the new file's.
 */
export async function writeFileAtomic(
  path: string,
  produce: (file: Deno.FsFile) => Promise<void>,
  mode = 0o666,
): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const file = await Deno.open(tmp, { write: true, createNew: true, mode });
  try {
    await produce(file);
    await file.sync();
    file.close();
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

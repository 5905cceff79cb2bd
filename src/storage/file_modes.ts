/**
 * File and directory modes for what strata writes into a replica directory
 * (file and sftp replicas): never more readable than the database they copy.
 */

export interface FileModes {
  file: number;
  dir: number;
}

/** Until the database's mode is known: the system's defaults (the umask applies). */
export const DEFAULT_MODES: FileModes = { file: 0o666, dir: 0o777 };

/**
 * Modes no wider than a database file's `mode`: its permission bits for
 * files (0600 for a 0600 database), and those plus search (x) wherever read
 * is allowed for directories (0700).
 */
export function modesFor(mode: number): FileModes {
  const file = mode & 0o666;
  return { file, dir: file | ((file & 0o444) >> 2) };
}

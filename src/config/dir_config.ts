/**
 * Directory replication (`dir` + `pattern`): the settings of one database
 * found beneath a directory. As in Litestream v0.5, each database's replicas
 * get the database's path relative to the directory appended to their path
 * (`/backups` → `/backups/sub/app.db`), and a `meta-path` is a base under
 * which each database gets `<rel dir>/.<file>-strata`.
 */

import { basename, dirname, join, posix, relative, resolve, sep } from "node:path";
import type { Config, DbConfig, DirConfig } from "./config_types.ts";
import { globToRegExp } from "./glob.ts";
import type { ReplicaConfig } from "./replica_url.ts";

/** The configuration of database `dbPath` (an absolute path beneath `d.dir`). */
export function dirEntryConfig(d: DirConfig, dbPath: string): DbConfig {
  const rel = relative(d.dir, dbPath);
  if (rel === "" || rel.startsWith("..")) {
    throw new Error(`database ${dbPath} is not beneath directory ${d.dir}`);
  }
  const relSlash = rel.split(sep).join("/");
  const { dir: _d, pattern: _p, recursive: _r, watch: _w, ...settings } = d;
  return {
    ...settings,
    path: dbPath,
    metaPath: d.metaPath === undefined
      ? undefined
      : join(d.metaPath, dirname(rel), `.${basename(rel)}-strata`),
    replicas: d.replicas.map((r) => withSubPath(r, relSlash)),
  };
}

/**
 * The configuration of database `path`: a `dbs` entry naming it, else a
 * directory entry it falls under (by path and pattern only: the file need
 * not exist, as for a restore), else null.
 */
export function configForPath(cfg: Pick<Config, "dbs" | "dirs">, path: string): DbConfig | null {
  const abs = resolve(path);
  const db = cfg.dbs.find((d) => resolve(d.path) === abs);
  if (db) return db;
  for (const d of cfg.dirs) {
    const dir = resolve(d.dir);
    const rel = relative(dir, abs);
    if (rel === "" || rel.startsWith("..") || (!d.recursive && rel.includes(sep))) continue;
    if (globToRegExp(d.pattern).test(basename(abs))) return dirEntryConfig({ ...d, dir }, abs);
  }
  return null;
}

function withSubPath(r: ReplicaConfig, rel: string): ReplicaConfig {
  if (r.type === "file") return { ...r, path: join(r.path, ...rel.split("/")) };
  const base = r.path.replace(/\/+$/, "");
  return { ...r, path: base === "" ? rel : posix.join(base, rel) };
}

/**
 * `strata reset DB_PATH`: removes a database's local meta directory (its
 * captured files and position), as Litestream's reset does. The next
 * `strata replicate` starts from the database as it is: a replica whose
 * newest state it equals continues its history; one it no longer equals is
 * reported diverged (nothing shows the database descends from it), and
 * `replicate -new-lineage` continues it with a fresh snapshot. Nothing in any
 * replica is touched. Refused while a replicate holds it.
 */

import { isAbsolute, join, relative, resolve } from "node:path";
import { CONFIG_FLAGS, parse, readConfig, wantsHelp } from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  "dry-run": { type: "bool", help: "say what would be removed, remove nothing" },
};

const USAGE = `Usage: strata reset [-config PATH] [-dry-run] DB_PATH

Removes DB_PATH's local meta directory (captured files not yet in every
replica are lost from it; the replicas keep everything they have). Use it when
the local state is damaged; the next strata replicate starts afresh from the
database as it is: a replica whose newest state the database equals continues,
one it no longer equals is reported diverged (-new-lineage continues it with a
fresh snapshot). Refused while a strata replicate is capturing DB_PATH.`;

export async function runReset(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("give one DB_PATH");
  const db = resolve(flags.args[0]);
  const cfg = flags.strings.has("config") ? await readConfig(flags, true) : null;
  const { defaultMetaPath } = await import("../capture/mod.ts");
  const { MetaDirLock } = await import("../capture/meta_dir.ts");
  const configured = cfg?.dbs.find((d) => resolve(d.path) === db)?.metaPath;
  const meta = configured ? resolve(configured) : defaultMetaPath(db);
  const st = await Deno.lstat(meta).catch(() => null);
  if (!st) {
    console.log(`nothing to reset: ${db} has no meta directory at ${meta}`);
    return 0;
  }
  if (!st.isDirectory) throw new Error(`${meta} is not a directory; not removing it`);
  // only a strata meta directory, never one that holds the database (meta-path: a data dir)
  const rel = relative(meta, db);
  if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) {
    throw new Error(`${meta} holds the database ${db}: not removing it (check meta-path)`);
  }
  const looksLikeOurs =
    await Deno.stat(join(meta, "ltx")).then((s) => s.isDirectory, () => false) ||
    await Deno.stat(join(meta, "db-identity")).then((s) => s.isFile, () => false);
  if (!looksLikeOurs) {
    throw new Error(
      `${meta} is not a strata meta directory (no ltx/ or db-identity in it): not removing it`,
    );
  }
  const lock = await MetaDirLock.acquire(meta, db); // refuses, naming the holder, while replicating
  try {
    if (flags.bools.has("dry-run")) {
      console.log(`would remove ${meta} (the local state of ${db})`);
      return 0;
    }
    await Deno.remove(meta, { recursive: true });
    console.log(
      `removed ${meta}: the next strata replicate of ${db} starts from the database as it is`,
    );
    return 0;
  } finally {
    lock.release();
  }
}

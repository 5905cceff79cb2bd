/**
 * Entries of one config that would write over each other: two databases (or
 * one database twice) in one replica, a replica inside another, one database
 * listed twice, two entries sharing a meta directory. Each would interleave
 * two histories in one place and corrupt both, so it is a config error naming
 * both entries and their lines.
 */

import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { globToRegExp } from "./glob.ts";
import type { ReplicaConfig } from "./replica_url.ts";

/** A `dbs` entry as the check sees it. */
export interface EntryPlace {
  /** The database path, or the directory of a `dir` entry (canonical). */
  path: string;
  /** The path as the config wrote it. */
  written?: string;
  line?: number;
  dir?: { pattern: string; recursive: boolean };
  metaPath?: string;
  replicas: { replica: ReplicaConfig; line?: number }[];
}

export interface Overlap {
  message: string;
  /** The line of the later of the two entries. */
  line?: number;
}

/** Where a replica keeps its files: a namespace (store, bucket) and a path in it. */
interface Place {
  space: string;
  segments: string[];
  shown: string;
}

/**
 * An absolute path with symbolic links resolved as far as the path exists
 * (the rest is kept as written), so two spellings of one file compare equal.
 */
export function canonicalPath(p: string): string {
  const abs = resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(Deno.realPathSync(head), ...tail);
    } catch {
      const up = dirname(head);
      if (up === head) return abs;
      tail.unshift(basename(head));
      head = up;
    }
  }
}

function segments(p: string): string[] {
  return p.split("/").filter((s) => s !== "" && s !== ".");
}

function placeOf(r: ReplicaConfig): Place {
  switch (r.type) {
    case "file": {
      const path = canonicalPath(r.path);
      return { space: "file", segments: segments(path), shown: `file://${path}` };
    }
    case "s3": {
      const host = r.endpoint ? r.endpoint.replace(/^https?:\/\//, "").replace(/\/+$/, "") : "";
      return {
        space: `s3 ${host} ${r.bucket}`,
        segments: segments(r.path),
        shown: `s3://${r.bucket}/${r.path}${host ? ` (endpoint ${host})` : ""}`,
      };
    }
    case "sftp": {
      // a relative path is under the user's login directory
      const who = r.path.startsWith("/") ? "" : `${r.user}@`;
      return {
        space: `sftp ${who}${r.host.toLowerCase()}:${r.port}`,
        segments: segments(r.path),
        shown: `sftp://${r.user}@${r.host}:${r.port}${r.path.startsWith("/") ? "" : "/"}${r.path}`,
      };
    }
    case "abs":
      return {
        space: `abs ${r.endpoint ?? ""} ${r.accountName ?? ""} ${r.container}`,
        segments: segments(r.path),
        shown: `abs://${r.accountName ? `${r.accountName}@` : ""}${r.container}/${r.path}`,
      };
    case "gs":
      return {
        space: `gs ${r.bucket}`,
        segments: segments(r.path),
        shown: `gs://${r.bucket}/${r.path}`,
      };
    case "webdav":
      return {
        space: `webdav ${r.url.toLowerCase()}`,
        segments: segments(r.path),
        shown: `${r.url}${r.path}`,
      };
    case "nats":
      return {
        space: `nats ${r.server.toLowerCase()} ${r.bucket}`,
        segments: segments(r.path),
        shown: `${r.server}/${r.bucket}${r.path ? `/${r.path}` : ""}`,
      };
  }
}

function startsWith(long: string[], short: string[]): boolean {
  return short.length <= long.length && short.every((s, i) => long[i] === s);
}

function lineText(line: number | undefined): string {
  return line ? ` (line ${line})` : "";
}

function entryName(e: EntryPlace): string {
  const as = e.written !== undefined && e.written !== e.path ? ` (written ${e.written})` : "";
  return e.dir ? `directory ${e.path}${as} (${e.dir.pattern})` : `database ${e.path}${as}`;
}

/** Whether database path `db` is one that directory entry `d` replicates. */
function dirCovers(d: EntryPlace, db: string): boolean {
  const rel = relative(d.path, db);
  if (rel === "" || rel.startsWith("..") || (!d.dir!.recursive && rel.includes(sep))) return false;
  return globToRegExp(d.dir!.pattern).test(basename(db));
}

/** The first overlap among `entries` (paths already canonical), or null. */
export function findOverlap(entries: EntryPlace[]): Overlap | null {
  // one database listed twice, by path or by a directory entry
  for (let j = 0; j < entries.length; j++) {
    const b = entries[j];
    for (let i = 0; i < j; i++) {
      const a = entries[i];
      const same = !a.dir && !b.dir && a.path === b.path ||
        a.dir && b.dir && a.path === b.path && a.dir.pattern === b.dir.pattern;
      const covered = a.dir && !b.dir
        ? dirCovers(a, b.path)
        : !a.dir && b.dir && dirCovers(b, a.path);
      if (same || covered) {
        return {
          line: b.line,
          message: `${entryName(b)} is already replicated by ${entryName(a)}${
            lineText(a.line)
          }: two replications of one database interleave their captures in one meta directory and replica; list it once`,
        };
      }
      if (a.metaPath !== undefined && a.metaPath === b.metaPath) {
        return {
          line: b.line,
          message: `${entryName(b)} has the meta-path ${b.metaPath} of ${entryName(a)}${
            lineText(a.line)
          }: give each its own`,
        };
      }
    }
  }
  // two replicas in one place, or one inside another
  const all = entries.flatMap((e) =>
    e.replicas.map((r) => ({ entry: e, line: r.line, place: placeOf(r.replica) }))
  );
  for (let j = 0; j < all.length; j++) {
    const b = all[j];
    for (let i = 0; i < j; i++) {
      const a = all[i];
      if (a.place.space !== b.place.space) continue;
      const whose = a.entry === b.entry
        ? `another replica of the same ${entryName(a.entry)}`
        : `the replica of ${entryName(a.entry)}`;
      let what: string | null = null;
      if (a.place.segments.join("/") === b.place.segments.join("/")) what = "is also";
      else if (startsWith(b.place.segments, a.place.segments)) what = `is inside ${a.place.shown},`;
      else if (startsWith(a.place.segments, b.place.segments)) what = `contains ${a.place.shown},`;
      if (what) {
        return {
          line: b.line,
          message: `replica ${b.place.shown} of ${entryName(b.entry)} ${what} ${whose}${
            lineText(a.line)
          }: histories in one place corrupt each other; give each replica its own path`,
        };
      }
    }
  }
  return null;
}

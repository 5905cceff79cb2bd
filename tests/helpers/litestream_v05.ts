/**
 * Replicas laid out as Litestream v0.5 leaves them, built from a real SQLite
 * database's history: every file flagged NoChecksum (zero pre/post-apply
 * checksums), snapshots at level 9 from TXID 1, compacted files that span a
 * snapshot's TXID (L0 files after it expired), timestamps in the file's
 * mtime as Litestream's file replica keeps them.
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { encodeLtx } from "../../src/ltx/encoder.ts";
import { FLAG_NO_CHECKSUM, makeHeader } from "../../src/ltx/header.ts";
import { lockPageNumber } from "../../src/ltx/checksum.ts";
import { bytesChecksum } from "./strata.ts";
import type { ReplicaClient } from "../../src/storage/mod.ts";

/**
 * The database file after each of `statements` (one transaction each, in a
 * rollback-journal database, so the file is the whole state): index i is
 * TXID i + 1. With `wal`, a WAL database checkpointed after each (as
 * Litestream's databases are: their first page says WAL).
 */
export async function databaseStates(
  statements: string[],
  opts: { wal?: boolean } = {},
): Promise<Uint8Array[]> {
  const dir = await Deno.makeTempDir({ prefix: "strata-states-" });
  const path = join(dir, "app.db");
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA page_size=4096; PRAGMA journal_mode=${opts.wal ? "WAL" : "DELETE"};`);
    const states: Uint8Array[] = [];
    for (const s of statements) {
      db.exec(`BEGIN; ${s}; COMMIT;`);
      if (opts.wal) db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      states.push(await Deno.readFile(path));
    }
    return states;
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * An LTX file for TXIDs [min, max] of `states` as Litestream v0.5 writes it:
 * the pages that differ from the state at min - 1 (all of them from TXID 1),
 * as of max, with no checksums; with `checksums`, as strata writes it (the
 * states' database checksums before and after).
 */
export async function ltxOfStates(
  states: Uint8Array[],
  min: bigint,
  max: bigint,
  timestamp: number,
  opts: { pageSize?: number; checksums?: boolean } = {},
): Promise<Uint8Array> {
  const ps = opts.pageSize ?? 4096;
  const to = states[Number(max) - 1];
  const from = min === 1n ? null : states[Number(min) - 2];
  const commit = to.length / ps;
  const lock = lockPageNumber(ps);
  const pages: { pgno: number; data: Uint8Array }[] = [];
  for (let p = 1; p <= commit; p++) {
    if (p === lock) continue;
    const data = to.subarray((p - 1) * ps, p * ps);
    const old = from && p * ps <= from.length ? from.subarray((p - 1) * ps, p * ps) : null;
    if (old && old.every((b, i) => b === data[i])) continue;
    pages.push({ pgno: p, data });
  }
  const header = makeHeader({
    pageSize: ps,
    commit,
    minTXID: min,
    maxTXID: max,
    timestamp: BigInt(timestamp),
    flags: opts.checksums ? 0 : FLAG_NO_CHECKSUM,
    preApplyChecksum: opts.checksums && from ? bytesChecksum(from) : 0n,
  });
  return await encodeLtx(header, pages, opts.checksums ? bytesChecksum(to) : undefined);
}

/** The database checksum of a state (a whole database file's bytes). */
export const stateChecksum = bytesChecksum;

/** Writes the file [min, max] of `states` at `level`, as Litestream writes it, created at `at(max)`. */
export async function putStates(
  client: ReplicaClient,
  states: Uint8Array[],
  level: number,
  min: number,
  max: number,
  at: (txid: number) => number,
): Promise<void> {
  const bytes = await ltxOfStates(states, BigInt(min), BigInt(max), at(max));
  await putFile(client, level, BigInt(min), BigInt(max), bytes, at(max));
}

/** Writes `bytes` into the replica as file [min, max] of `level`, created at `at`. */
export async function putFile(
  client: ReplicaClient,
  level: number,
  min: bigint,
  max: bigint,
  bytes: Uint8Array,
  at: number,
): Promise<void> {
  await client.writeFile(level, min, max, ReadableStream.from([bytes]), new Date(at));
}

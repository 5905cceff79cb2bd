/** LTX file names, TXIDs and positions (spec/ltx.md "Names and TXIDs"). */

import { formatChecksum } from "./checksum.ts";

/** A TXID as 16 lowercase hex digits. */
export function formatTXID(txid: bigint): string {
  return txid.toString(16).padStart(16, "0");
}

/** Parses 16 hex digits into a TXID, or returns null. */
export function parseTXID(s: string): bigint | null {
  if (!/^[0-9a-fA-F]{16}$/.test(s)) return null;
  return BigInt("0x" + s);
}

/** `%016x-%016x.ltx` */
export function formatLtxFileName(minTXID: bigint, maxTXID: bigint): string {
  return `${formatTXID(minTXID)}-${formatTXID(maxTXID)}.ltx`;
}

export interface TXIDRange {
  minTXID: bigint;
  maxTXID: bigint;
}

/** Parses an LTX file name; returns null for anything else. */
export function parseLtxFileName(name: string): TXIDRange | null {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/.exec(name);
  if (!m) return null;
  const minTXID = BigInt("0x" + m[1]);
  const maxTXID = BigInt("0x" + m[2]);
  if (minTXID < 1n || minTXID > maxTXID) return null;
  return { minTXID, maxTXID };
}

/** A replica or database position: the TXID and the database checksum after it. */
export interface Position {
  txid: bigint;
  postApplyChecksum: bigint;
}

/** `%016x/%016x` */
export function formatPosition(p: Position): string {
  return `${formatTXID(p.txid)}/${formatChecksum(p.postApplyChecksum)}`;
}

export function parsePosition(s: string): Position | null {
  const m = /^([0-9a-f]{16})\/([0-9a-f]{16})$/.exec(s);
  if (!m) return null;
  return { txid: BigInt("0x" + m[1]), postApplyChecksum: BigInt("0x" + m[2]) };
}

/** True when file `b` may follow file `a`: `b.min <= a.max + 1 && b.max > a.max`. */
export function follows(a: TXIDRange, b: TXIDRange): boolean {
  return b.minTXID <= a.maxTXID + 1n && b.maxTXID > a.maxTXID;
}

/** Milliseconds since the epoch, displayed in UTC with millisecond precision. */
export function formatTimestamp(ms: bigint | number): string {
  return new Date(Number(ms)).toISOString();
}

/**
 * `-timestamp` and `-txid`, read the same way by every command that takes a
 * point of a replica's history (restore, clone).
 */

import { readRFC3339 } from "../rfc3339.ts";
import { UsageError } from "./flags.ts";

/** An RFC 3339 time with its zone; anything else (no zone, 2026-02-30, …) is refused. */
export function parseTimestampFlag(ts: string): Date {
  const d = readRFC3339(ts);
  if (typeof d === "string") {
    throw new UsageError(
      `invalid -timestamp ${JSON.stringify(ts)}: ${d} (RFC 3339, e.g. 2026-11-22T10:00:00Z)`,
    );
  }
  return d;
}

/** Decimal TXIDs longer than this could be a hex TXID with its leading zeros cut. */
const MAX_DECIMAL_DIGITS = 8;

/**
 * A TXID: exactly 16 hex digits (as strata prints them), `0x` and up to 16
 * hex digits, or a decimal number of at most 8 digits without leading zeros.
 * Longer digit strings, or ones with a leading zero, are refused: they read
 * as hex or decimal alike (`000000000001234` is 16 hex digits short of one).
 */
export function parseTXIDFlag(s: string): bigint {
  const t = s.trim();
  let n: bigint | null = null;
  if (/^[0-9a-f]{16}$/i.test(t)) n = BigInt("0x" + t);
  else if (/^0x[0-9a-f]{1,16}$/i.test(t)) n = BigInt(t.toLowerCase());
  else if (/^[1-9]\d*$/.test(t) && t.length <= MAX_DECIMAL_DIGITS) n = BigInt(t);
  else if (/^0+$/.test(t)) n = 0n;
  else if (/^\d+$/.test(t)) {
    throw new UsageError(
      `ambiguous -txid ${
        JSON.stringify(s)
      }: digits only, ${t.length} long, could be hex or decimal; give 16 hex digits as strata prints them (e.g. ${
        t.padStart(16, "0").slice(-16)
      }), 0x for hex (0x${
        t.replace(/^0+(?=.)/, "")
      }), or a decimal of at most ${MAX_DECIMAL_DIGITS} digits without leading zeros`,
    );
  }
  if (n === null) {
    throw new UsageError(
      `invalid -txid ${
        JSON.stringify(s)
      }: use 16 hex digits (e.g. 00000000000004d2), 0x-prefixed hex (0x4d2) or a decimal number (1234)`,
    );
  }
  if (n === 0n) throw new UsageError(`invalid -txid ${JSON.stringify(s)}: TXIDs start at 1`);
  return n;
}

/** The 100-byte LTX header and 16-byte trailer (spec/ltx.md). */

import { CHECKSUM_FLAG, lockPageNumber } from "./checksum.ts";
import { LtxFormatError, LtxUnsupportedLayoutError } from "./errors.ts";
import { formatTXID, type TXIDRange } from "./names.ts";

export const MAGIC = "LTX1";
export const HEADER_SIZE = 100;
export const TRAILER_SIZE = 16;
export const PAGE_HEADER_SIZE = 6;
export const FLAG_NO_CHECKSUM = 0x2;
/** Header flag of the LiteFS v0.3 layout (whole body LZ4-compressed). */
const FLAG_LEGACY_COMPRESS_LZ4 = 0x1;
export const PAGE_FLAG_SIZE = 0x0001;

export interface LtxHeader {
  flags: number;
  pageSize: number;
  /** Database size in pages after applying the file; 0 = deleted. */
  commit: number;
  minTXID: bigint;
  maxTXID: bigint;
  /** Milliseconds since the Unix epoch. */
  timestamp: bigint;
  preApplyChecksum: bigint;
  walOffset: bigint;
  walSize: bigint;
  walSalt1: number;
  walSalt2: number;
  nodeID: bigint;
  /**
   * A file in Litestream's form (see litestream_form.ts) carrying strata's
   * checksums in the header's reserved bytes. Decoded, such a file reads as
   * the checksummed file it was made from: `flags` without NoChecksum,
   * `preApplyChecksum` the kept one, its trailer's post-apply checksum the
   * kept `post`.
   */
  kept?: KeptChecksums;
}

/** Pre- and post-apply checksums kept in the reserved header bytes 80..99. */
export interface KeptChecksums {
  pre: bigint;
  post: bigint;
}

/** "STRC": the reserved bytes hold kept checksums (Litestream writes zeros there). */
const KEPT_MAGIC = 0x53545243;

export interface LtxTrailer {
  postApplyChecksum: bigint;
  fileChecksum: bigint;
}

/** A header with defaults for everything but the required fields. */
export function makeHeader(
  h: Pick<LtxHeader, "pageSize" | "commit" | "minTXID" | "maxTXID"> & Partial<LtxHeader>,
): LtxHeader {
  return {
    flags: 0,
    timestamp: 0n,
    preApplyChecksum: 0n,
    walOffset: 0n,
    walSize: 0n,
    walSalt1: 0,
    walSalt2: 0,
    nodeID: 0n,
    ...h,
  };
}

export function isSnapshot(h: LtxHeader): boolean {
  return h.minTXID === 1n;
}

export function hasChecksums(h: LtxHeader): boolean {
  return (h.flags & FLAG_NO_CHECKSUM) === 0;
}

export function isValidPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** Checks every header rule; returns a reason, or null when the header is valid. */
export function headerProblem(h: LtxHeader): string | null {
  if ((h.flags & ~FLAG_NO_CHECKSUM) !== 0) {
    return `unknown header flags 0x${h.flags.toString(16)}`;
  }
  if (!isValidPageSize(h.pageSize)) return `bad page size ${h.pageSize}`;
  if (h.commit < 0 || h.commit > 0xffffffff) return `bad commit ${h.commit}`;
  if (h.minTXID <= 0n) return "min TXID is 0";
  if (h.maxTXID <= 0n) return "max TXID is 0";
  if (h.minTXID > h.maxTXID) return `min TXID ${h.minTXID} > max TXID ${h.maxTXID}`;
  if (h.walOffset < 0n) return `negative WAL offset ${h.walOffset}`;
  if (h.walSize < 0n) return `negative WAL size ${h.walSize}`;
  if (h.walOffset === 0n && (h.walSize !== 0n || h.walSalt1 !== 0 || h.walSalt2 !== 0)) {
    return "WAL size or salts set without a WAL offset";
  }
  if (isSnapshot(h) || !hasChecksums(h)) {
    if (h.preApplyChecksum !== 0n) {
      return isSnapshot(h)
        ? "snapshot with a non-zero pre-apply checksum"
        : "NoChecksum file with a non-zero pre-apply checksum";
    }
  } else if ((h.preApplyChecksum & CHECKSUM_FLAG) === 0n) {
    return `pre-apply checksum ${h.preApplyChecksum.toString(16)} lacks the checksum flag`;
  }
  return null;
}

/**
 * Why a header does not cover exactly the TXIDs `named` (a file's name, a
 * restore plan) says, or null when it does: a renamed or foreign file.
 */
export function headerRangeProblem(h: LtxHeader, named: TXIDRange): string | null {
  if (h.minTXID === named.minTXID && h.maxTXID === named.maxTXID) return null;
  return `its header covers TXIDs ${formatTXID(h.minTXID)}-${
    formatTXID(h.maxTXID)
  }, its name says ${formatTXID(named.minTXID)}-${
    formatTXID(named.maxTXID)
  } (renamed, or copied in from elsewhere)`;
}

export function encodeHeader(
  h: LtxHeader,
  out: Uint8Array = new Uint8Array(HEADER_SIZE),
): Uint8Array {
  out.fill(0, 0, HEADER_SIZE);
  const dv = new DataView(out.buffer, out.byteOffset, HEADER_SIZE);
  out[0] = 0x4c; // L
  out[1] = 0x54; // T
  out[2] = 0x58; // X
  out[3] = 0x31; // 1
  dv.setUint32(4, h.flags);
  dv.setUint32(8, h.pageSize);
  dv.setUint32(12, h.commit);
  dv.setBigUint64(16, h.minTXID);
  dv.setBigUint64(24, h.maxTXID);
  dv.setBigInt64(32, h.timestamp);
  dv.setBigUint64(40, h.preApplyChecksum);
  dv.setBigInt64(48, h.walOffset);
  dv.setBigInt64(56, h.walSize);
  dv.setUint32(64, h.walSalt1);
  dv.setUint32(68, h.walSalt2);
  dv.setBigUint64(72, h.nodeID);
  if (h.kept) {
    dv.setUint32(80, KEPT_MAGIC);
    dv.setBigUint64(84, h.kept.pre);
    dv.setBigUint64(92, h.kept.post);
  }
  return out;
}

/** Why a file read without keys cannot be parsed when it is an age file, else null. */
export function ageEncryptedReason(b: Uint8Array): string | null {
  return new TextDecoder().decode(b.subarray(0, 18)) === "age-encryption.org"
    ? "is age-encrypted: read it through a config whose replica has age identities"
    : null;
}

/** Decodes and validates a header; throws `LtxFormatError` naming `file`. */
export function decodeHeader(b: Uint8Array, file: string): LtxHeader {
  if (b.length < HEADER_SIZE) throw new LtxFormatError(file, "short file: no complete header");
  if (b[0] !== 0x4c || b[1] !== 0x54 || b[2] !== 0x58 || b[3] !== 0x31) {
    const encrypted = ageEncryptedReason(b);
    if (encrypted) throw new LtxFormatError(file, encrypted);
    throw new LtxFormatError(file, "wrong magic (not an LTX file)");
  }
  const dv = new DataView(b.buffer, b.byteOffset, HEADER_SIZE);
  const h: LtxHeader = {
    flags: dv.getUint32(4),
    pageSize: dv.getUint32(8),
    commit: dv.getUint32(12),
    minTXID: dv.getBigUint64(16),
    maxTXID: dv.getBigUint64(24),
    timestamp: dv.getBigInt64(32),
    preApplyChecksum: dv.getBigUint64(40),
    walOffset: dv.getBigInt64(48),
    walSize: dv.getBigInt64(56),
    walSalt1: dv.getUint32(64),
    walSalt2: dv.getUint32(68),
    nodeID: dv.getBigUint64(72),
  };
  if (h.flags & FLAG_LEGACY_COMPRESS_LZ4) {
    throw new LtxUnsupportedLayoutError(
      file,
      "header flag 0x1 (whole-body LZ4, LiteFS v0.3 format); only LTX as written by Litestream v0.5+ is read",
    );
  }
  const problem = headerProblem(h);
  if (problem) throw new LtxFormatError(file, problem);
  if (dv.getUint32(80) === KEPT_MAGIC) {
    const kept = { pre: dv.getBigUint64(84), post: dv.getBigUint64(92) };
    const lifted: LtxHeader = {
      ...h,
      flags: h.flags & ~FLAG_NO_CHECKSUM,
      preApplyChecksum: kept.pre,
      kept,
    };
    const why = hasChecksums(h)
      ? "kept checksums in a file that has its own"
      : headerProblem(lifted) ??
        ((kept.post & CHECKSUM_FLAG) === 0n ? "kept post-apply checksum lacks the flag" : null);
    if (why) throw new LtxFormatError(file, why);
    return lifted;
  }
  return h;
}

export function encodeTrailer(
  t: LtxTrailer,
  out: Uint8Array = new Uint8Array(TRAILER_SIZE),
): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset, TRAILER_SIZE);
  dv.setBigUint64(0, t.postApplyChecksum);
  dv.setBigUint64(8, t.fileChecksum);
  return out;
}

export function decodeTrailer(b: Uint8Array): LtxTrailer {
  const dv = new DataView(b.buffer, b.byteOffset, TRAILER_SIZE);
  return { postApplyChecksum: dv.getBigUint64(0), fileChecksum: dv.getBigUint64(8) };
}

/** Checks a page number against the header; returns a reason or null. */
export function pageNumberProblem(h: LtxHeader, pgno: number, prev: number): string | null {
  if (pgno <= prev) {
    return pgno === prev ? `page ${pgno} repeated` : `page ${pgno} out of order after ${prev}`;
  }
  if (pgno > h.commit) return `page ${pgno} above commit ${h.commit}`;
  if (pgno === lockPageNumber(h.pageSize)) return `page ${pgno} is the lock page`;
  return null;
}

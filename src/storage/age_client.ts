/**
 * A replica encrypted with age (`age:` in a replica's config, Litestream
 * v0.3's form): every file strata uploads (LTX files of every level,
 * snapshots, branch manifests) is encrypted to the configured recipients
 * with npm's age-encryption (the age format's TypeScript implementation, not
 * our own cryptography); reads decrypt with the configured identities. The
 * lease object (`lock.json`) is not an LTX file and is not encrypted.
 *
 * - Listings pass through: sizes are the encrypted objects' sizes.
 * - A whole-file read decrypts as it streams.
 * - A byte range is read from the whole file, decrypted (age's STREAM chunks
 *   cannot be addressed without the header): a range that lies within the
 *   plaintext is returned as asked; one that reaches past its end (its
 *   offset was computed from the listed, encrypted size: a trailer read) is
 *   the plaintext's last `length` bytes.
 * - A file that is not age-encrypted, or that no configured identity opens,
 *   fails naming the file and the reason: an encrypted replica never mixes
 *   with a plaintext one silently.
 * - Litestream v0.3 replicas written with `age` (each snapshot and WAL segment
 *   encrypted after its LZ4 compression) are read through the same
 *   identities: the raw reads of their generations decrypt as they stream.
 */

import { ageDecrypt, ageEncrypt } from "./age_payload.ts";
import { ForwardingReplicaClient } from "./forwarding_client.ts";
import { type RawEntry, rawReaderOf } from "./litestream_v03.ts";
import {
  type ByteRange,
  type ReplicaClient,
  type ReplicaFile,
  replicaFileLabel,
} from "./client.ts";

export interface AgeSettings {
  /** Public keys (`age1…`) new files are encrypted to. */
  recipients: string[];
  /** Private keys (`AGE-SECRET-KEY-1…`) that may open files; several for key rotation. */
  identities: string[];
}

/** A file the configured identities cannot open, or one that is not encrypted at all. */
export class AgeDecryptError extends Error {
  /** True when the file is not an age file at all (written before encryption was switched on). */
  readonly plaintext: boolean;
  constructor(file: string, reason: string, plaintext = false) {
    super(`${file}: ${reason}`);
    this.name = "AgeDecryptError";
    this.plaintext = plaintext;
  }
}

export class AgeReplicaClient extends ForwardingReplicaClient {
  readonly #settings: AgeSettings;

  /** The recipients and identities (for wrapping another client the same way; never logged). */
  get settings(): AgeSettings {
    return this.#settings;
  }

  /** A Litestream v0.3 layout's raw reads (when the store has them), decrypted. */
  readonly listRaw?: (dir: string) => Promise<RawEntry[]>;
  readonly openRaw?: (path: string) => Promise<ReadableStream<Uint8Array>>;

  constructor(inner: ReplicaClient, settings: AgeSettings) {
    super(inner);
    this.#settings = settings;
    const raw = rawReaderOf(inner);
    if (raw) {
      this.listRaw = (dir) => raw.listRaw(dir);
      this.openRaw = async (path) => await this.#decrypt(await raw.openRaw(path), path);
    }
  }

  override async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const label = replicaFileLabel(this.location, { level, minTXID, maxTXID });
    if (this.#settings.recipients.length === 0) {
      throw new Error(`${label}: no age recipients to encrypt to (age.recipients)`);
    }
    const sealed = await ageEncrypt(data, this.#settings.recipients);
    return await this.inner.writeFile(level, minTXID, maxTXID, sealed, createdAt);
  }

  override async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const label = replicaFileLabel(this.location, { level, minTXID, maxTXID });
    const sealed = await this.inner.openFile(level, minTXID, maxTXID);
    const plain = await this.#decrypt(sealed, label);
    return range ? ReadableStream.from([await rangeOf(plain, range)]) : plain;
  }

  async #decrypt(
    sealed: ReadableStream<Uint8Array>,
    label: string,
  ): Promise<ReadableStream<Uint8Array>> {
    if (this.#settings.identities.length === 0) {
      await sealed.cancel().catch(() => {});
      throw new AgeDecryptError(label, "the replica is age-encrypted and no age identity is set");
    }
    try {
      return await ageDecrypt(sealed, this.#settings.identities, label);
    } catch (e) {
      await sealed.cancel().catch(() => {});
      const msg = (e as Error).message;
      throw new AgeDecryptError(
        label,
        msg === "not an age file"
          ? "is not age-encrypted: this replica holds files written without encryption (an encrypted replica is never mixed with a plaintext one: points written before encryption was switched on restore without the age settings)"
          : /no identity matched/.test(msg)
          ? "no configured age identity matches this file's recipients"
          : `cannot be decrypted: ${msg}`,
        msg === "not an age file",
      );
    }
  }
}

/**
 * The client under `client`'s age layer, reading files as stored (for the
 * position of a replica written before encryption was switched on), or null
 * when `client` does not encrypt.
 */
export function storedFilesOf(client: ReplicaClient): ReplicaClient | null {
  for (let c: ReplicaClient | undefined = client; c; c = (c as ForwardingReplicaClient).inner) {
    if (c instanceof AgeReplicaClient) return c.inner;
    if (!(c instanceof ForwardingReplicaClient)) return null;
  }
  return null;
}

/** The range of a decrypted file (see the module comment), read to its end. */
async function rangeOf(plain: ReadableStream<Uint8Array>, r: ByteRange): Promise<Uint8Array> {
  const want = new Uint8Array(r.length);
  let got = 0;
  const tail = new Uint8Array(r.length);
  let tailLen = 0;
  let pos = 0;
  for await (const chunk of plain) {
    const a = Math.max(r.offset - pos, 0);
    const b = Math.min(r.offset + r.length - pos, chunk.length);
    if (b > a) {
      want.set(chunk.subarray(a, b), got);
      got += b - a;
    }
    // the last r.length bytes seen so far
    if (chunk.length >= r.length) {
      tail.set(chunk.subarray(chunk.length - r.length));
      tailLen = r.length;
    } else {
      const keep = Math.min(tailLen, r.length - chunk.length);
      tail.copyWithin(0, tailLen - keep, tailLen);
      tail.set(chunk, keep);
      tailLen = keep + chunk.length;
    }
    pos += chunk.length;
  }
  if (r.offset + r.length <= pos) return want;
  return tail.subarray(0, tailLen);
}

/**
 * An age file's payload on the runtime's native ChaCha20-Poly1305.
 *
 * npm's age-encryption does the age format: recipients, identities, the
 * header and its MAC. Its payload cipher is JavaScript (the noble library,
 * ~190 MB/s here); `node:crypto`'s ChaCha20-Poly1305 (Deno's native one) is
 * ~1.3 GB/s. age-encryption provides for "delegated decryption": it hands
 * out the file key of a header its identities open (`decryptHeader`); for
 * encryption an observing recipient sees the file key it wraps. The payload
 * is then age's STREAM (age-encryption.org/v1, "Payload"):
 *
 * - a 16-byte random nonce after the header; payload key =
 *   HKDF-SHA256(file key, salt = nonce, info = "payload"), 32 bytes;
 * - 64 KiB chunks, each sealed with ChaCha20-Poly1305 (16-byte tag) under a
 *   12-byte nonce: an 11-byte big-endian chunk counter and a last-chunk flag
 *   (1 on the final chunk only);
 * - the final chunk is shorter than 64 KiB or full; it is empty only when
 *   the whole plaintext is.
 *
 * Any damage (a changed byte, a chunk cut off, moved or repeated, a missing
 * final chunk) fails a tag or the last-chunk rules: nothing unauthenticated
 * is ever passed on. tests/age_payload_test.ts holds both directions to
 * age-encryption's own implementation.
 */

import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import { Decrypter, Encrypter, type Stanza } from "age-encryption";
import { AGE_CHUNK, AGE_TAG, openBatch, openChunks } from "./age_worker.ts";

const CHUNK = AGE_CHUNK;
const TAG = AGE_TAG;
/** Chunks opened together (1 MiB), and batches in flight at once. */
const BATCH_CHUNKS = 16;
const IN_FLIGHT = 4;
const NONCE = 16;
/** The first read of a file: its header, nonce and the start of the payload. */
const HEAD_READ = 64 * 1024;
/** A header longer than this is not an age header strata wrote (nor anyone sane). */
const MAX_HEADER = 1 << 20;
const MAGIC = new TextEncoder().encode("age-encryption.org/v1\n");
const FOOTER = new TextEncoder().encode("\n--- ");

/** Why an age file cannot be opened (its reason is the message). */
export class AgePayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgePayloadError";
  }
}

/** True when `head` (a file's first bytes) starts like an age file. */
export function looksLikeAge(head: Uint8Array): boolean {
  return head.length >= MAGIC.length && MAGIC.every((b, i) => head[i] === b);
}

function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", fileKey, nonce, "payload", 32));
}

/** The 12-byte nonce of chunk `counter`, flagged last or not. */
function chunkNonce(counter: number, last: boolean): Uint8Array {
  const n = new Uint8Array(12);
  // 11-byte big-endian counter: 2^53 chunks of 64 KiB is far beyond any file
  let c = counter;
  for (let i = 10; i >= 0 && c > 0; i--) {
    n[i] = c % 256;
    c = Math.floor(c / 256);
  }
  n[11] = last ? 1 : 0;
  return n;
}

/** A recipient that wraps nothing and keeps the file key age-encryption drew. */
class FileKeyWitness {
  fileKey: Uint8Array | null = null;
  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    this.fileKey = fileKey.slice();
    return [];
  }
}

/**
 * `plain` encrypted to `recipients` as an age file: the header (and its MAC)
 * by age-encryption, the payload here.
 */
export async function ageEncrypt(
  plain: ReadableStream<Uint8Array>,
  recipients: string[],
): Promise<ReadableStream<Uint8Array>> {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  const witness = new FileKeyWitness();
  e.addRecipient(witness);
  // an empty file: header || its nonce (16) || one sealed empty chunk (16)
  const empty = await e.encrypt(new Uint8Array(0));
  const header = empty.subarray(0, empty.length - NONCE - TAG);
  if (!witness.fileKey || !looksLikeAge(header)) {
    throw new Error("age-encryption did not produce a header with a file key");
  }
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE));
  const key = payloadKey(witness.fileKey, nonce);
  witness.fileKey.fill(0);
  const buf = new Uint8Array(CHUNK);
  let used = 0;
  let counter = 0;
  const seal = (last: boolean): Uint8Array => {
    const c = createCipheriv("chacha20-poly1305", key, chunkNonce(counter++, last), {
      authTagLength: TAG,
    });
    const out = new Uint8Array(used + TAG);
    out.set(c.update(buf.subarray(0, used)));
    c.final();
    out.set(c.getAuthTag(), used);
    used = 0;
    return out;
  };
  const sealing = new TransformStream<Uint8Array, Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(header.slice());
      ctrl.enqueue(nonce);
    },
    transform(chunk, ctrl) {
      let at = 0;
      while (at < chunk.length) {
        // a full buffer is sealed only once more data shows it is not the last chunk
        if (used === CHUNK) ctrl.enqueue(seal(false));
        const n = Math.min(CHUNK - used, chunk.length - at);
        buf.set(chunk.subarray(at, at + n), used);
        used += n;
        at += n;
      }
    },
    flush(ctrl) {
      ctrl.enqueue(seal(true));
      key.fill(0);
    },
  });
  return plain.pipeThrough(sealing);
}

/**
 * The plaintext of the age file `sealed`, opened with `identities`. Throws
 * AgePayloadError when the file is not an age file or its header is
 * malformed, and age-encryption's error when no identity opens it; damage
 * in the payload errors the returned stream (its message starts with `name`).
 */
export async function ageDecrypt(
  sealed: ReadableStream<Uint8Array>,
  identities: string[],
  name = "age file",
): Promise<ReadableStream<Uint8Array>> {
  const src = new Filler(sealed);
  // the header: read into a buffer grown until its MAC line and the payload nonce are in
  let head: Filled = { buf: new Uint8Array(HEAD_READ), used: 0 };
  let headerEnd = -1;
  let key: Uint8Array;
  try {
    let searched = 0;
    let footer = -1;
    while (true) {
      head = await src.fill(head.buf, head.used);
      const got = head.buf.subarray(0, head.used);
      if (!looksLikeAge(got)) {
        throw new AgePayloadError(
          got.length < MAGIC.length && MAGIC.subarray(0, got.length).every((b, i) => got[i] === b)
            ? "age header cut short"
            : "not an age file",
        );
      }
      // the first "\n--- " begins the MAC line (stanza lines start "-> ", bodies are base64);
      // once found, only its newline is looked for (the payload may hold anything)
      if (footer < 0) footer = indexOf(got, FOOTER, Math.max(0, searched - FOOTER.length + 1));
      searched = got.length;
      if (footer >= 0 && headerEnd < 0) {
        const nl = got.indexOf(0x0a, footer + FOOTER.length);
        if (nl >= 0) headerEnd = nl + 1;
      }
      if (headerEnd >= 0 && got.length >= headerEnd + NONCE) break;
      if (src.done) {
        throw new AgePayloadError(
          headerEnd < 0 ? "age header cut short" : "age payload nonce cut short",
        );
      }
      if (head.buf.length >= MAX_HEADER) throw new AgePayloadError("age header too long");
      const bigger = new Uint8Array(head.buf.length * 2);
      bigger.set(got);
      head = { buf: bigger, used: got.length };
    }
    const d = new Decrypter();
    for (const id of identities) d.addIdentity(id);
    const fileKey = await d.decryptHeader(head.buf.subarray(0, headerEnd));
    key = payloadKey(fileKey, head.buf.subarray(headerEnd, headerEnd + NONCE));
    fileKey.fill(0);
  } catch (e) {
    await src.cancel();
    throw e;
  }

  // the payload, in batches of whole chunks: each read straight into its buffer (when the
  // source is a byte stream) and opened on the worker, a few in flight; a file of one batch
  // is opened on this thread
  const whole = CHUNK + TAG;
  const batchSize = BATCH_CHUNKS * whole;
  const leftover = head.buf.subarray(headerEnd + NONCE, head.used);
  let cur: Filled | null = null;
  let counter = 0;
  let batches = 0;
  const inFlight: Promise<Uint8Array | number>[] = [];
  // read-ahead grows as the file is read: one batch at first (a merge opens many files and
  // reads each slowly), up to IN_FLIGHT for a file read straight through (a restore)
  let depth = 1;
  const fail = (chunk: number) =>
    new AgePayloadError(
      `${name}: age payload chunk ${chunk} fails authentication (damaged, truncated or reordered)`,
    );
  const dispatch = (b: Filled, final: boolean) => {
    const sealed = b.buf.subarray(0, b.used);
    const chunks = Math.ceil(b.used / whole);
    if (final) {
      const lastLen = b.used - (chunks - 1) * whole;
      if (chunks === 0 || lastLen < TAG) {
        throw new AgePayloadError(`${name}: age payload cut short (a chunk without its tag)`);
      }
      if (lastLen === TAG && counter + chunks - 1 > 0) {
        throw new AgePayloadError(`${name}: age payload ends with an empty chunk`);
      }
    }
    const opened = batches++ === 0 && final
      ? Promise.resolve(openChunks(createDecipheriv, key, counter, sealed, final))
      : openBatch({ key, counter, sealed, final });
    opened.catch(() => {}); // awaited in order; one failing while others wait is not unhandled
    inFlight.push(opened);
    counter += chunks;
  };
  /** Dispatches the next batch; false when the payload is all dispatched. */
  const produce = async (): Promise<boolean> => {
    if (cur === null) {
      if (batches > 0) return false;
      if (src.done) {
        // the whole file came with the header (most L0 files): no batch buffer
        cur = { buf: leftover.slice(), used: leftover.length };
      } else {
        const b = new Uint8Array(batchSize);
        b.set(leftover);
        cur = await src.fill(b, leftover.length);
      }
    }
    // a full batch is the final one only when nothing follows it
    let next: Filled | null = null;
    if (cur.used === batchSize && !src.done) {
      next = await src.fill(new Uint8Array(batchSize), 0);
      if (next.used === 0) next = null;
    }
    dispatch(cur, next === null);
    cur = next;
    return true;
  };
  const stop = async () => {
    key.fill(0);
    await src.cancel();
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        while (inFlight.length < depth && await produce());
        if (inFlight.length === 0) {
          key.fill(0);
          ctrl.close();
          return;
        }
        const r = await inFlight.shift()!;
        if (typeof r === "number") throw fail(r);
        ctrl.enqueue(r);
        depth = Math.min(IN_FLIGHT, depth + 1);
      } catch (e) {
        await stop();
        throw e;
      }
    },
    cancel: stop,
  }, { highWaterMark: 1 });
}

interface Filled {
  buf: Uint8Array;
  used: number;
}

/**
 * Reads a stream into buffers the caller gives: straight into them when it
 * is a byte stream (a file's), else chunk by chunk (copied, the rest of a
 * chunk kept for the next buffer).
 */
class Filler {
  readonly #byob: ReadableStreamBYOBReader | null = null;
  readonly #chunks: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #carry: Uint8Array | null = null;
  /** The stream has ended (and nothing is carried). */
  done = false;

  constructor(s: ReadableStream<Uint8Array>) {
    try {
      this.#byob = s.getReader({ mode: "byob" });
    } catch {
      this.#chunks = s.getReader();
    }
  }

  /** Fills `buf` from `used` on, up to its end or the stream's (a BYOB read hands back a new view). */
  async fill(buf: Uint8Array, used: number): Promise<Filled> {
    while (used < buf.length && !this.done) {
      if (this.#byob) {
        const size = buf.length; // the read detaches buf's memory and hands it back
        const r = await this.#byob.read(new Uint8Array(buf.buffer, used, size - used));
        if (r.value) {
          buf = new Uint8Array(r.value.buffer, 0, size);
          used += r.value.byteLength;
        }
        if (r.done) this.done = true;
        continue;
      }
      let c = this.#carry;
      this.#carry = null;
      if (!c) {
        const r = await this.#chunks!.read();
        if (r.done) {
          this.done = true;
          break;
        }
        c = r.value;
      }
      const n = Math.min(c.length, buf.length - used);
      buf.set(c.subarray(0, n), used);
      used += n;
      if (n < c.length) this.#carry = c.subarray(n);
    }
    return { buf, used };
  }

  async cancel(): Promise<void> {
    this.done = true;
    this.#carry = null;
    await (this.#byob ?? this.#chunks)!.cancel().catch(() => {});
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

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
  const reader = sealed.getReader();
  let pending = new Uint8Array(0);
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    const { value, done } = await reader.read();
    if (done) {
      ended = true;
      return false;
    }
    const next = new Uint8Array(pending.length + value.length);
    next.set(pending);
    next.set(value, pending.length);
    pending = next;
    return true;
  };
  let headerEnd = -1;
  try {
    let searched = 0;
    while (headerEnd < 0) {
      if (pending.length >= MAGIC.length && !looksLikeAge(pending)) {
        throw new AgePayloadError("not an age file");
      }
      const at = indexOf(pending, FOOTER, Math.max(0, searched - FOOTER.length));
      if (at >= 0) {
        const nl = pending.indexOf(0x0a, at + FOOTER.length);
        if (nl >= 0) headerEnd = nl + 1;
      }
      searched = pending.length;
      if (headerEnd >= 0) break;
      if (pending.length > MAX_HEADER) throw new AgePayloadError("age header too long");
      if (!(await more())) {
        throw new AgePayloadError(
          looksLikeAge(pending) ? "age header cut short" : "not an age file",
        );
      }
    }
    while (pending.length < headerEnd + NONCE) {
      if (!(await more())) throw new AgePayloadError("age payload nonce cut short");
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  }
  const d = new Decrypter();
  for (const id of identities) d.addIdentity(id);
  let key: Uint8Array;
  try {
    const fileKey = await d.decryptHeader(pending.subarray(0, headerEnd));
    key = payloadKey(fileKey, pending.subarray(headerEnd, headerEnd + NONCE));
    fileKey.fill(0);
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  }
  const first = pending.subarray(headerEnd + NONCE);
  const whole = CHUNK + TAG;
  // batches of whole chunks: opened on a worker (in order, a few in flight), or on this
  // thread while the file is small (one batch)
  const batchSize = BATCH_CHUNKS * whole;
  let buf = new Uint8Array(batchSize);
  let used = 0;
  let counter = 0;
  let batches = 0;
  const inFlight: { counter: number; result: Promise<Uint8Array | number> }[] = [];
  const fail = (chunk: number) =>
    new AgePayloadError(
      `${name}: age payload chunk ${chunk} fails authentication (damaged, truncated or reordered)`,
    );
  const dispatch = (final: boolean) => {
    const sealed = buf.subarray(0, used);
    const chunks = Math.ceil(used / whole);
    if (final) {
      const lastLen = used - (chunks - 1) * whole;
      if (chunks === 0 || lastLen < TAG) {
        throw new AgePayloadError(`${name}: age payload cut short (a chunk without its tag)`);
      }
      if (lastLen === TAG && counter + chunks - 1 > 0) {
        throw new AgePayloadError(`${name}: age payload ends with an empty chunk`);
      }
    }
    const b = { key, counter, sealed, final };
    inFlight.push({
      counter,
      result: batches++ === 0 && final
        ? Promise.resolve(openChunks(createDecipheriv, key, counter, sealed, final))
        : openBatch(b),
    });
    counter += chunks;
    buf = new Uint8Array(batchSize);
    used = 0;
  };
  const settle = async (ctrl: TransformStreamDefaultController<Uint8Array>) => {
    const r = await inFlight.shift()!.result;
    if (typeof r === "number") throw fail(r);
    ctrl.enqueue(r);
  };
  const take = async (chunk: Uint8Array, ctrl: TransformStreamDefaultController<Uint8Array>) => {
    let at = 0;
    while (at < chunk.length) {
      // a full batch goes only once more data shows its last chunk is not the final one
      if (used === batchSize) {
        dispatch(false);
        if (inFlight.length >= IN_FLIGHT) await settle(ctrl);
      }
      const n = Math.min(batchSize - used, chunk.length - at);
      buf.set(chunk.subarray(at, at + n), used);
      used += n;
      at += n;
    }
  };
  const opening = new TransformStream<Uint8Array, Uint8Array>({
    async start(ctrl) {
      if (first.length > 0) await take(first, ctrl);
    },
    transform: take,
    async flush(ctrl) {
      try {
        dispatch(true);
        while (inFlight.length > 0) await settle(ctrl);
      } finally {
        key.fill(0);
      }
    },
  });
  reader.releaseLock(); // the rest of the file flows straight into the opening
  return sealed.pipeThrough(opening);
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

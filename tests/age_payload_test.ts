/**
 * strata's age payload (native ChaCha20-Poly1305, src/storage/age_payload.ts)
 * against npm's age-encryption in both directions, at the sizes where age's
 * STREAM rules bite (empty, one byte, exactly one and two 64 KiB chunks, one
 * byte either side), fed in odd pieces; and every kind of damage refused.
 */

import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from "age-encryption";
import { ageDecrypt, ageEncrypt } from "../src/storage/age_payload.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";

const K = 64 * 1024;
// up to 16 chunks open on the calling thread, more on the worker (batches of 16, 4 in flight)
const SIZES = [0, 1, 1000, K - 1, K, K + 1, 2 * K, 2 * K + 17, 5 * K + 3, 16 * K, 16 * K + 1];
const LARGE = [32 * K, 33 * K - 1, 100 * K + 7];

const identity = await generateIdentity();
const recipient = await identityToRecipient(identity);

function sample(n: number, seed = n): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** `bytes` as a stream of pieces of 1, 7, 4099, 65536 + 5, ... bytes. */
function pieces(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const sizes = [1, 7, 4099, K + 5, 3];
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  return ReadableStream.from(out);
}

async function all(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("age payload: strata's files open with age-encryption, byte for byte", async () => {
  for (const n of [...SIZES, ...LARGE]) {
    const plain = sample(n);
    const sealed = await all(await ageEncrypt(pieces(plain), [recipient]));
    // age's size: header + 16-byte nonce + 16 bytes of tag a chunk (at least one)
    const chunks = Math.max(1, Math.ceil(n / K));
    assert(sealed.length > n + 16 + 16 * chunks, `size of ${n}`);
    const d = new Decrypter();
    d.addIdentity(identity);
    assertEquals(await d.decrypt(sealed), plain, `${n} bytes`);
  }
});

Deno.test("age payload: age-encryption's files open with strata's, byte for byte", async () => {
  for (const n of [...SIZES, ...LARGE]) {
    const plain = sample(n);
    const e = new Encrypter();
    e.addRecipient(recipient);
    const sealed = await e.encrypt(plain);
    assertEquals(await all(await ageDecrypt(pieces(sealed), [identity])), plain, `${n} bytes`);
  }
});

Deno.test("age payload: a file read as a byte stream (straight into the batches) opens byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const n of [0, 100, K, 16 * K, 16 * K + 5, 40 * K + 3]) {
      const plain = sample(n, 7);
      const path = `${dir}/f.age`;
      await Deno.writeFile(path, await all(await ageEncrypt(pieces(plain), [recipient])));
      const f = await Deno.open(path);
      assertEquals(await all(await ageDecrypt(f.readable, [identity])), plain, `${n} bytes`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("age payload: round trip with several recipients; any one identity opens it", async () => {
  const other = await generateIdentity();
  const plain = sample(3 * K + 11);
  const sealed = await all(
    await ageEncrypt(pieces(plain), [recipient, await identityToRecipient(other)]),
  );
  assertEquals(await all(await ageDecrypt(pieces(sealed), [other])), plain);
  assertEquals(await all(await ageDecrypt(pieces(sealed), [identity])), plain);
  // the file key differs per file: the same plaintext twice gives different bytes
  const again = await all(await ageEncrypt(pieces(plain), [recipient]));
  assert(again.length > 100 && !again.every((b, i) => b === sealed[i]), "fresh key per file");
});

Deno.test("age payload: damage is refused, never passed on (a small file, and a large one opened on the worker)", async () => {
  const large = sample(70 * K + 5);
  const sealedLarge = await all(await ageEncrypt(pieces(large), [recipient]));
  const bodyLarge = sealedLarge.length - (70 * (K + 16) + 5 + 16);
  for (const at of [bodyLarge + 20 * (K + 16) + 3, bodyLarge + 64 * (K + 16) + 1]) {
    const b = sealedLarge.slice();
    b[at] ^= 0x80;
    await assertRejects(
      () => ageDecrypt(pieces(b), [identity]).then(all),
      Error,
      "fails authentication",
    );
  }
  // cut at a batch boundary (16 chunks) and at a chunk boundary inside a batch
  for (const chunks of [32, 45]) {
    await assertRejects(
      () =>
        ageDecrypt(pieces(sealedLarge.subarray(0, bodyLarge + chunks * (K + 16))), [identity])
          .then(all),
      Error,
      "fails authentication",
    );
  }
  assertEquals(await all(await ageDecrypt(pieces(sealedLarge), [identity])), large);

  const plain = sample(3 * K + 100);
  const sealed = await all(await ageEncrypt(pieces(plain), [recipient]));
  const headerEnd = sealed.indexOf(0x0a, new TextDecoder().decode(sealed).indexOf("\n--- ") + 5) +
    1;
  const body = headerEnd + 16;
  const open = (bytes: Uint8Array) => ageDecrypt(pieces(bytes), [identity]).then(all);
  const flipped = (at: number) => {
    const b = sealed.slice();
    b[at] ^= 1;
    return b;
  };
  // a byte of any chunk, of a tag, of the nonce, of the header (its MAC)
  for (const at of [body + 5, body + K + 16 + 9, sealed.length - 1]) {
    await assertRejects(() => open(flipped(at)), Error, "fails authentication");
  }
  await assertRejects(() => open(flipped(headerEnd + 3)), Error, "fails authentication");
  await assertRejects(() => open(flipped(headerEnd - 10)), Error);
  // cut at a chunk boundary (the last chunk lost: the one before is not flagged last)
  await assertRejects(
    () => open(sealed.subarray(0, body + 3 * (K + 16))),
    Error,
    "fails authentication",
  );
  // cut inside a chunk, and inside a tag
  await assertRejects(() => open(sealed.subarray(0, sealed.length - 50)), Error);
  await assertRejects(() => open(sealed.subarray(0, body + 10)), Error);
  // two chunks swapped
  const swapped = sealed.slice();
  swapped.set(sealed.subarray(body + (K + 16), body + 2 * (K + 16)), body);
  swapped.set(sealed.subarray(body, body + (K + 16)), body + (K + 16));
  await assertRejects(() => open(swapped), Error, "fails authentication");
  // a file of exactly one full chunk, its tag cut by one byte
  const full = await all(await ageEncrypt(pieces(sample(K)), [recipient]));
  await assertRejects(() => open(full.subarray(0, full.length - 1)), Error);
  // the wrong identity, a file that is not age at all, a header cut short
  await assertRejects(
    () => ageDecrypt(pieces(sealed), [identityWrong]),
    Error,
    "no identity matched",
  );
  await assertRejects(() => ageDecrypt(pieces(plain), [identity]), Error, "not an age file");
  await assertRejects(
    () => ageDecrypt(pieces(sealed.subarray(0, 40)), [identity]),
    Error,
    "age header cut short",
  );
});

const identityWrong = await generateIdentity();

Deno.test("age payload: a header whose MAC line straddles the first read (64 KiB) still opens", async () => {
  const plain = sample(3000, 3);
  // age ignores stanzas of unknown types: padding ones move the MAC line where it is wanted
  const sealedWith = async (n: number, extra: number) => {
    const e = new Encrypter();
    e.addRecipient(recipient);
    e.addRecipient(
      {
        wrapFileKey: () => [
          ...Array.from({ length: n }, () => ({
            type: "pad",
            args: ["x".repeat(40)],
            body: new Uint8Array(30),
          })),
          { type: "pad", args: ["y".repeat(extra + 1)], body: new Uint8Array(0) },
        ],
      } as unknown as Parameters<Encrypter["addRecipient"]>[0],
    );
    return await e.encrypt(plain);
  };
  const macAt = (b: Uint8Array) => new TextDecoder("latin1").decode(b).indexOf("\n--- ");
  const per = macAt(await sealedWith(1, 0)) - macAt(await sealedWith(0, 0));
  const n = Math.floor((K - 200 - macAt(await sealedWith(0, 0))) / per);
  const seen = new Set<number>();
  for (let extra = 0; extra < per + 150; extra++) {
    const sealed = await sealedWith(n, extra);
    seen.add(Math.sign(macAt(sealed) + 48 - K));
    assertEquals(await all(await ageDecrypt(ReadableStream.from([sealed]), [identity])), plain);
  }
  assert(seen.has(-1) && (seen.has(0) || seen.has(1)), "the MAC line crossed the first read's end");
});

/**
 * Opens batches of age STREAM chunks (age_payload.ts) on a worker thread,
 * so that a restore's reading and parsing thread does not also decrypt.
 * One worker for the process, started on first use and stopped when no batch
 * has been in flight for LINGER_MS (a live worker holds the process open).
 * Where no worker can start, batches are opened on the calling thread.
 */

import { createDecipheriv } from "node:crypto";

export const AGE_CHUNK = 64 * 1024;
export const AGE_TAG = 16;

/**
 * The plaintext of consecutive STREAM chunks starting at chunk `counter`:
 * every chunk but the batch's last is whole; the last is the file's final
 * chunk when `final`. Returns the number of the first chunk that fails
 * authentication instead (nothing of the batch is then used).
 */
export function openChunks(
  decipher: typeof createDecipheriv,
  key: Uint8Array,
  counter: number,
  sealed: Uint8Array,
  final: boolean,
): Uint8Array | number {
  const whole = 65536 + 16;
  const n = Math.ceil(sealed.length / whole);
  const out = new Uint8Array(sealed.length - 16 * n);
  const nonce = new Uint8Array(12);
  for (let i = 0; i < n; i++) {
    const c = sealed.subarray(i * whole, Math.min((i + 1) * whole, sealed.length));
    if (c.length < 16) return counter + i;
    // 11-byte big-endian chunk number, then the final-chunk flag
    nonce.fill(0);
    let x = counter + i;
    for (let j = 10; j >= 0 && x > 0; j--) {
      nonce[j] = x % 256;
      x = Math.floor(x / 256);
    }
    nonce[11] = final && i === n - 1 ? 1 : 0;
    const d = decipher("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    d.setAuthTag(c.subarray(c.length - 16));
    const p = d.update(c.subarray(0, c.length - 16));
    try {
      d.final();
    } catch {
      return counter + i;
    }
    out.set(p, i * 65536);
  }
  return out;
}

interface Batch {
  key: Uint8Array;
  counter: number;
  sealed: Uint8Array;
  final: boolean;
}

const workerSource = `import { createDecipheriv } from "node:crypto";
const openChunks = ${openChunks.toString()};
self.onmessage = (e) => {
  const m = e.data;
  const r = openChunks(createDecipheriv, m.key, m.counter, m.sealed, m.final);
  m.key.fill(0); // this thread's copy of the payload key
  if (typeof r === "number") self.postMessage({ id: m.id, failed: r });
  else self.postMessage({ id: m.id, out: r }, [r.buffer]);
};`;

/** How long an idle worker is kept for the next batch (it holds the process open meanwhile). */
const LINGER_MS = 100;

class AgeWorker {
  readonly #w: Worker;
  readonly #url: string;
  readonly #pending = new Map<
    number,
    { resolve(r: Uint8Array | number): void; reject(e: Error): void }
  >();
  #id = 0;
  #idle: ReturnType<typeof setTimeout> | null = null;

  constructor() {
    this.#url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
    this.#w = new Worker(this.#url, { type: "module" });
    this.#w.onmessage = (e: MessageEvent<{ id: number; out?: Uint8Array; failed?: number }>) => {
      const m = e.data;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) {
        this.#idle = setTimeout(() => this.#stop(), LINGER_MS);
      }
      p.resolve(m.out ?? m.failed!);
    };
    this.#w.onerror = (e) => {
      e.preventDefault();
      this.#stop(new Error(`the age decryption worker failed: ${e.message}`));
    };
  }

  open(b: Batch): Promise<Uint8Array | number> {
    const id = ++this.#id;
    if (this.#idle !== null) clearTimeout(this.#idle);
    this.#idle = null;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#w.postMessage({ id, ...b }, [b.sealed.buffer as ArrayBuffer]);
      } catch (e) {
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#idle = setTimeout(() => this.#stop(), LINGER_MS);
        reject(e);
      }
    });
  }

  #stop(e?: Error): void {
    if (worker === this) worker = null;
    if (e) noWorker = true; // a worker that failed once: later batches open on this thread
    this.#w.terminate();
    URL.revokeObjectURL(this.#url);
    for (const p of this.#pending.values()) p.reject(e ?? new Error("stopped"));
    this.#pending.clear();
  }
}

let worker: AgeWorker | null = null;
let noWorker = false;

/**
 * Opens a batch on the worker (its `sealed` buffer moves there: the caller
 * gives it up), or on this thread when no worker can run.
 */
export function openBatch(b: Batch): Promise<Uint8Array | number> {
  if (!noWorker && !worker) {
    try {
      worker = new AgeWorker();
    } catch {
      noWorker = true;
    }
  }
  if (worker) return worker.open(b);
  return Promise.resolve(openChunks(createDecipheriv, b.key, b.counter, b.sealed, b.final));
}

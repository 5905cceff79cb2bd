/**
 * Decodes batches of LTX pages on every core: a few workers each run the
 * page kernel (LZ4 + CRC-64, page_kernel.ts) on batches posted to them, the
 * buffers moving between threads without copies. Results come back in the
 * order batches were posted to each worker; callers await them in their own
 * order. Without workers (one core, or a runtime that refuses them) the
 * kernel runs on the calling thread.
 */

import {
  type EncodeBatchInput,
  type EncodeBatchResult,
  makePageKernel,
  type PageBatchInput,
  type PageBatchResult,
} from "./page_kernel.ts";
import { PAGE_KERNEL_WASM } from "./page_kernel_wasm.ts";
import { pageKernel } from "./kernel.ts";

/** A decoded batch: the result and the buffers (the caller's again). */
export interface DecodedBatch extends PageBatchResult {
  src: Uint8Array;
  out: Uint8Array;
}

/** A worker's whole program: the kernel (with the WebAssembly module, when used) and its loop. */
function workerSource(webAssembly: boolean): string {
  const wasm = webAssembly ? JSON.stringify(PAGE_KERNEL_WASM) : "";
  return `const kernel = (${makePageKernel.toString()})(${wasm});
self.onmessage = (e) => {
  const m = e.data;
  if (m.op === "encode") {
    const r = kernel.encodeBatch(m);
    if (!r) return self.postMessage({ id: m.id, error: "encoding needs the WebAssembly kernel" });
    self.postMessage(
      { id: m.id, lens: r.lens, crcHi: r.crcHi, crcLo: r.crcLo, src: m.src, out: m.out },
      [r.lens.buffer, r.crcHi.buffer, r.crcLo.buffer, m.src.buffer, m.out.buffer],
    );
    return;
  }
  const r = kernel.decodeBatch(m);
  self.postMessage(
    { id: m.id, crcHi: r.crcHi, crcLo: r.crcLo, failed: r.failed, reason: r.reason, src: m.src, out: m.out },
    [r.crcHi.buffer, r.crcLo.buffer, m.src.buffer, m.out.buffer],
  );
};`;
}

/** An encoded batch: blocks in `out` at k × bound, and the buffers (the caller's again). */
export interface EncodedBatch extends EncodeBatchResult {
  src: Uint8Array;
  out: Uint8Array;
}

interface Pending {
  // deno-lint-ignore no-explicit-any
  resolve(d: any): void;
  reject(e: Error): void;
}

export class PagePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #id = 0;
  #local: ReturnType<typeof makePageKernel> | null = null;
  #url: string | null = null;

  readonly #webAssembly: boolean;

  /**
   * `threads` workers (0: decode on the calling thread); `webAssembly`
   * false runs the kernel's JavaScript form (for comparison in tests).
   */
  constructor(threads = defaultThreads(), webAssembly = true) {
    this.#webAssembly = webAssembly;
    if (threads <= 0) return;
    try {
      const source = workerSource(webAssembly);
      this.#url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      for (let i = 0; i < threads; i++) {
        const w = new Worker(this.#url, { type: "module" });
        w.onmessage = (e) => this.#settle(e.data);
        w.onerror = (e) => {
          e.preventDefault();
          this.#failAll(new Error(`page decoder worker failed: ${e.message}`));
        };
        this.#workers.push(w);
      }
    } catch {
      this.close(); // no workers here: the calling thread decodes
    }
  }

  /** Worker threads running (0: the calling thread decodes). */
  get threads(): number {
    return this.#workers.length;
  }

  /** Number of batches worth keeping in flight. */
  get depth(): number {
    return Math.max(1, this.#workers.length * 2);
  }

  /** Decodes one batch; its `src` and `out` buffers are lent to the pool until it settles. */
  decode(b: PageBatchInput): Promise<DecodedBatch> {
    if (this.#workers.length === 0) {
      this.#local ??= this.#webAssembly ? pageKernel : makePageKernel();
      try {
        return Promise.resolve({ ...this.#local.decodeBatch(b), src: b.src, out: b.out });
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.#post<DecodedBatch>({ op: "decode", ...b }, [b.src.buffer, b.out.buffer]);
  }

  /** Encodes one batch (LZ4 + CRC-64 of each page); its buffers are lent until it settles. */
  encode(b: EncodeBatchInput): Promise<EncodedBatch> {
    if (this.#workers.length === 0) {
      const k = this.#webAssembly ? pageKernel : null;
      const r = k?.encodeBatch(b);
      if (!r) return Promise.reject(new Error("encoding needs the WebAssembly kernel"));
      return Promise.resolve({ ...r, src: b.src, out: b.out });
    }
    return this.#post<EncodedBatch>({ op: "encode", ...b }, [b.src.buffer, b.out.buffer]);
  }

  #post<T>(msg: Record<string, unknown>, transfer: ArrayBufferLike[]): Promise<T> {
    const id = ++this.#id;
    const w = this.#workers[this.#next++ % this.#workers.length];
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      w.postMessage({ id, ...msg }, transfer as Transferable[]);
    });
  }

  #settle(m: { id: number; error?: string }): void {
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error));
    else p.resolve(m);
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  /** Stops the workers; batches still in flight fail. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = null;
    this.#failAll(new Error("page decoder closed"));
  }
}

/**
 * One worker per core but one (the thread that reads, checks and writes
 * keeps a core), at least one, at most four; STRATA_DECODE_THREADS sets it
 * (0: decode on the calling thread). Measured on 2 cores: one worker 1.07 s
 * for a 256 MiB snapshot, two 1.17 s, none 1.24 s.
 */
function defaultThreads(): number {
  const env = Deno.env.get("STRATA_DECODE_THREADS");
  if (env !== undefined && /^\d+$/.test(env)) return Math.min(Number(env), 64);
  return Math.max(1, Math.min((navigator.hardwareConcurrency ?? 1) - 1, 4));
}

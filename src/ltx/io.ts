/** Byte sinks and a buffered reader: the streaming plumbing of the format library. */

/** Where encoded bytes go. A sink owns each chunk it is given. */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void> | void;
}

/** Anything that yields byte chunks in order: a web stream or an async iterable. */
export type ByteSource =
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>;

/** Collects everything written into memory (for tests and small files). */
export class MemorySink implements ByteSink {
  #chunks: Uint8Array[] = [];
  #length = 0;
  write(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }
  get length(): number {
    return this.#length;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** A sink writing every byte to a `Deno.FsFile`-like writer (handles short writes). */
export function writerSink(w: { write(p: Uint8Array): Promise<number> }): ByteSink {
  return {
    async write(chunk: Uint8Array): Promise<void> {
      let off = 0;
      while (off < chunk.length) off += await w.write(chunk.subarray(off));
    },
  };
}

function toAsyncIterator(src: ByteSource): AsyncIterator<Uint8Array> | Iterator<Uint8Array> {
  if (src instanceof ReadableStream) return src[Symbol.asyncIterator]();
  if (Symbol.asyncIterator in src) {
    return (src as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  }
  return (src as Iterable<Uint8Array>)[Symbol.iterator]();
}

/**
 * Reads a byte source through one growable buffer. `ensure(n)` makes `n`
 * bytes available at `pos`; consumers read `buf[pos..end)` directly and
 * advance `pos`. Memory stays bounded by the largest single request.
 */
export class BufferedReader {
  buf: Uint8Array;
  pos = 0;
  end = 0;
  /** Bytes consumed before `buf[0]` (so `offset` is the absolute position). */
  #base = 0;
  #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array> | null = null;
  /** A byte stream (a file's, say) is read straight into `buf`: no chunk allocated per read. */
  #byob: ReadableStreamBYOBReader | null = null;
  #done = false;
  #pending: Uint8Array | null = null;
  readonly #onBytes: ((n: number) => void) | null;

  /** `onBytes` hears of every chunk read (progress counting). */
  constructor(src: ByteSource, initialSize = 1 << 16, onBytes?: (n: number) => void) {
    this.#onBytes = onBytes ?? null;
    if (src instanceof ReadableStream) {
      try {
        this.#byob = src.getReader({ mode: "byob" });
      } catch { /* not a byte stream: chunk by chunk */ }
    }
    if (!this.#byob) this.#it = toAsyncIterator(src);
    this.buf = new Uint8Array(initialSize);
  }

  /** Absolute offset of `pos` in the source. */
  get offset(): number {
    return this.#base + this.pos;
  }

  get available(): number {
    return this.end - this.pos;
  }

  /** Ensures `n` bytes are available; returns false at end of input with fewer. */
  async ensure(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.#done && !this.#pending) return false;
      if (this.pos > 0 && (this.buf.length - this.pos < n || this.pos > this.buf.length >>> 1)) {
        this.buf.copyWithin(0, this.pos, this.end);
        this.#base += this.pos;
        this.end -= this.pos;
        this.pos = 0;
      }
      if (this.buf.length < n) {
        const bigger = new Uint8Array(Math.max(n, this.buf.length * 2));
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      }
      if (this.#byob) {
        if (this.end === this.buf.length) {
          // no room left to read into: move the unread bytes to the front, or grow
          if (this.pos > 0) {
            this.buf.copyWithin(0, this.pos, this.end);
            this.#base += this.pos;
            this.end -= this.pos;
            this.pos = 0;
          } else {
            const bigger = new Uint8Array(this.buf.length * 2);
            bigger.set(this.buf);
            this.buf = bigger;
          }
        }
        const r = await this.#byob.read(this.buf.subarray(this.end));
        if (r.done || !r.value) {
          this.#done = true;
          if (r.value) this.buf = new Uint8Array(r.value.buffer);
          continue;
        }
        // the read moved the buffer into the stream and back: the same memory, a new object
        this.buf = new Uint8Array(r.value.buffer);
        this.end += r.value.byteLength;
        this.#onBytes?.(r.value.byteLength);
        continue;
      }
      let chunk = this.#pending;
      this.#pending = null;
      if (!chunk) {
        const r = await this.#it!.next();
        if (r.done) {
          this.#done = true;
          continue;
        }
        chunk = r.value;
        this.#onBytes?.(chunk.length);
      }
      const room = this.buf.length - this.end;
      if (chunk.length > room) {
        this.buf.set(chunk.subarray(0, room), this.end);
        this.end += room;
        this.#pending = chunk.subarray(room);
      } else {
        this.buf.set(chunk, this.end);
        this.end += chunk.length;
      }
    }
    return true;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.ensure(1));
  }

  /** Stops reading the source early. */
  async cancel(): Promise<void> {
    if (!this.#done) {
      this.#done = true;
      this.#pending = null;
      if (this.#byob) await this.#byob.cancel();
      else await this.#it!.return?.();
    }
  }
}

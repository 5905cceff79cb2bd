/**
 * Progress of long work (restore, snapshot upload, verify) as a plain
 * callback, so library code reports it without knowing how it is shown;
 * src/cli/progress.ts draws it (a bar on a terminal, periodic lines otherwise).
 */

/** Called as work advances: bytes done so far and the total (0 when unknown). */
export type ProgressFn = (done: number, total: number) => void;

/** Passes `stream` through unchanged, reporting the bytes that went by. */
export function countingStream(
  stream: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        onBytes(chunk.length);
        ctrl.enqueue(chunk);
      },
    }),
  );
}

/** A running byte count reported to `fn` (if any) against a fixed total. */
export class ProgressCounter {
  done = 0;
  readonly total: number;
  readonly #fn: ProgressFn | undefined;

  constructor(total: number, fn?: ProgressFn) {
    this.total = total;
    this.#fn = fn;
    fn?.(0, total);
  }

  add(n: number): void {
    this.done += n;
    this.#fn?.(this.done, this.total);
  }

  /** Wraps a stream so its bytes count. */
  wrap(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    return this.#fn ? countingStream(stream, (n) => this.add(n)) : stream;
  }
}

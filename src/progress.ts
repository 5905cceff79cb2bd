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

/** One piece of long work being shown. */
export interface ProgressTask {
  report: ProgressFn;
  /** The work is over (successfully or not). */
  finish(ok?: boolean): void;
}

const NO_PROGRESS: ProgressTask = { report: () => {}, finish: () => {} };
let starter: ((label: string) => ProgressTask) | null = null;

/**
 * Sets how long work started with `startProgress` is shown (the cli installs
 * its terminal/line display); null shows nothing (the default).
 */
export function setProgressDisplay(fn: ((label: string) => ProgressTask) | null): void {
  starter = fn;
}

/** Starts showing progress of `label` (a no-op when no display is set). */
export function startProgress(label: string): ProgressTask {
  return starter?.(label) ?? NO_PROGRESS;
}

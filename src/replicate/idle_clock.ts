/**
 * One timer for every idle database in the process: a thousand idle
 * databases wake the process once a second, not a thousand times.
 */

export class IdleClock {
  readonly #periodMs: number;
  #waiting = new Set<() => void>();
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(periodMs: number) {
    this.#periodMs = periodMs;
  }

  /** Runs `fn` at the clock's next beat (within periodMs); returns a cancel function. */
  schedule(fn: () => void): () => void {
    this.#waiting.add(fn);
    this.#timer ??= setTimeout(() => this.#beat(), this.#periodMs);
    return () => {
      this.#waiting.delete(fn);
      if (this.#waiting.size === 0 && this.#timer !== null) {
        clearTimeout(this.#timer); // nothing waits: the process may exit
        this.#timer = null;
      }
    };
  }

  #beat(): void {
    this.#timer = null;
    const due = [...this.#waiting];
    this.#waiting.clear();
    for (const fn of due) fn(); // (each catches and reports its own errors)
  }
}

/** The process's idle clock, beating once a second. */
export const idleClock = new IdleClock(1_000);

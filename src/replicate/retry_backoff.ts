/**
 * Retries of a failing replica: each failure in a row doubles the wait
 * before the next scheduled attempt (from the sync interval, at most
 * RETRY_MAX_MS), and says whether the failure deserves an error-level log
 * line: when it is new, and again every ERROR_REPEAT_MS while it lasts, so a
 * replica that stays broken is never silent and never floods the log.
 */

/** The longest wait between two attempts at a failing replica. */
export const RETRY_MAX_MS = 30_000;
/** A failure that lasts is logged at error level again this often. */
export const ERROR_REPEAT_MS = 60_000;

export class RetryBackoff {
  readonly #baseMs: number;
  #failures = 0;
  #retryAt = 0;
  #lastMessage: string | null = null;
  #loggedAt = -Infinity;

  constructor(baseMs: number) {
    this.#baseMs = baseMs;
  }

  /** Failures in a row. */
  get failures(): number {
    return this.#failures;
  }

  /** No scheduled attempt before this time (ms since the epoch; 0 when not failing). */
  get retryAt(): number {
    return this.#retryAt;
  }

  /** Records a failure: the wait before the next attempt, and whether to log it loudly. */
  failed(message: string, now = Date.now()): { waitMs: number; loud: boolean } {
    this.#failures++;
    const waitMs = Math.min(RETRY_MAX_MS, this.#baseMs * 2 ** Math.min(this.#failures - 1, 16));
    this.#retryAt = now + waitMs;
    const loud = message !== this.#lastMessage || now - this.#loggedAt >= ERROR_REPEAT_MS;
    this.#lastMessage = message;
    if (loud) this.#loggedAt = now;
    return { waitMs, loud };
  }

  succeeded(): void {
    this.#failures = 0;
    this.#retryAt = 0;
    this.#lastMessage = null;
    this.#loggedAt = -Infinity;
  }
}

/** Minimal assertions (JSR's @std/assert is not reachable from these machines). */

import { deepStrictEqual, notDeepStrictEqual } from "node:assert";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  deepStrictEqual(actual, expected, msg);
}

export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  notDeepStrictEqual(actual, expected, msg);
}

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  if (!re.test(actual)) throw new Error(msg ?? `expected ${JSON.stringify(actual)} to match ${re}`);
}

export function assertInstanceOf<T>(
  value: unknown,
  type: new (...args: never[]) => T,
  msg?: string,
): asserts value is T {
  if (!(value instanceof type)) {
    throw new Error(msg ?? `expected an instance of ${type.name}, got ${String(value)}`);
  }
}

function checkError<E extends Error>(
  e: unknown,
  type: (new (...args: never[]) => E) | undefined,
  includes: string | undefined,
): E {
  if (type && !(e instanceof type)) {
    throw new Error(`expected ${type.name}, got ${e instanceof Error ? e.stack : String(e)}`);
  }
  if (includes && !(e as Error).message.includes(includes)) {
    throw new Error(
      `expected message to include ${JSON.stringify(includes)}, got ${(e as Error).message}`,
    );
  }
  return e as E;
}

/** Awaits `fn`, expecting it to reject with an error of `type`; returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  type?: new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, type, includes);
  }
  throw new Error(`expected a rejection${type ? " with " + type.name : ""}`);
}

/** Like assertRejects for synchronous code. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  type?: new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    return checkError(e, type, includes);
  }
  throw new Error(`expected an exception${type ? " of " + type.name : ""}`);
}

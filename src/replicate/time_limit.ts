/** Waiting with a bound: a stop or a start must not hang on a replica that never answers. */

/** `p`'s value, or null when it has not settled within `ms` (it goes on). */
export async function withinMs<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<null>((res) => (timer = setTimeout(() => res(null), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

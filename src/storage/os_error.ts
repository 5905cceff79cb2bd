/**
 * Errors of file operations on a replica (a directory, the lease file),
 * named by the stable path the operation was for and the system's reason
 * (ENOSPC, EACCES, …): never by a temporary name, so a failure that repeats
 * reads the same each time and log de-duplication works.
 */

/** The system's reason for a failed file operation, without the path it names. */
export function osReason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // Deno: "No space left on device (os error 28): open '/x/y.tmp'"
  const msg = e.message.replace(/: [a-z_]+ '[^']*'( -> '[^']*')?$/, "");
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && !msg.includes(code) ? `${msg} [${code}]` : msg;
}

/** A file operation on a replica failed: says which file, what was done, and why. */
export class ReplicaIoError extends Error {
  /** The system's error code (ENOSPC, EACCES, …), when known. */
  readonly code: string | null;
  constructor(op: string, path: string, cause: unknown) {
    super(`${path}: cannot ${op}: ${osReason(cause)}`, { cause });
    this.name = "ReplicaIoError";
    const code = (cause as { code?: unknown } | null)?.code;
    this.code = typeof code === "string" ? code : null;
  }
}

/** Runs `fn`, turning a failure into a ReplicaIoError for `op` on `path`. */
export async function io<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ReplicaIoError) throw e;
    throw new ReplicaIoError(op, path, e);
  }
}

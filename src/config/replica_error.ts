/**
 * What every replica type's settings share: the error for a bad replica URL
 * and the path clean-up. `replica_url.ts` and each provider's config import
 * this file, so imports run one way.
 */

export class ReplicaUrlError extends Error {
  constructor(url: string, reason: string) {
    super(`bad replica URL ${JSON.stringify(url)}: ${reason}`);
    this.name = "ReplicaUrlError";
  }
}

/** `a//b/./c/` → `a/b/c`, keeping a leading slash; "" stays "". */
export function cleanPath(p: string): string {
  const abs = p.startsWith("/");
  const parts: string[] = [];
  for (const s of p.split("/")) {
    if (s === "" || s === ".") continue;
    if (s === "..") parts.pop();
    else parts.push(s);
  }
  const joined = parts.join("/");
  return abs ? "/" + joined : joined;
}

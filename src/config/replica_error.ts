/**
 * What every replica type's settings share: the error for a bad replica URL
 * and the path clean-up. `replica_url.ts` and each provider's config import
 * this file, so imports run one way.
 */

export class ReplicaUrlError extends Error {
  constructor(url: string, reason: string) {
    super(`bad replica URL ${JSON.stringify(redactUrl(url))}: ${reason}`);
    this.name = "ReplicaUrlError";
  }
}

/**
 * A URL as messages may show it: a password in its user info and the values
 * of query parameters that carry secrets (keys, tokens, signatures) as `***`.
 */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#]*@/i, "$1:***@")
    .replace(/([?&][^=&#]*(?:key|secret|token|password|sig|credential)[^=&#]*=)[^&#]*/gi, "$1***");
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

/** File-name globs, as Go's filepath.Match reads them. */

/** A glob on a file name (`*`, `?`, `[abc]`, `[a-z]`, `[!a]`) as a RegExp, as Go's filepath.Match. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) throw new Error(`bad pattern ${JSON.stringify(pattern)}: unclosed [`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith("!") || body.startsWith("^")) body = "^" + body.slice(1);
      re += `[${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else if (c === "\\" && i + 1 < pattern.length) {
      re += pattern[++i].replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

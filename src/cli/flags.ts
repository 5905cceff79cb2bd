/**
 * Go-style flag parsing, as Litestream's commands take them: `-flag value`,
 * `-flag=value`, `--flag` and `--flag=value`; boolean flags take no value
 * unless written `-flag=false`; parsing stops at the first positional
 * argument or at `--`.
 */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagSpec {
  type: "string" | "bool";
  help: string;
  /** Shown in help as the value's name. */
  value?: string;
  /** Other names for the same flag (e.g. `o` for `output`). */
  aliases?: string[];
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface ParsedFlags {
  /** Each string flag's last value. */
  strings: Map<string, string>;
  /** Each string flag's values in order (for flags that may be given more than once). */
  lists: Map<string, string[]>;
  bools: Set<string>;
  args: string[];
}

export function parseFlags(argv: string[], specs: FlagSpecs): ParsedFlags {
  const byName = new Map<string, [string, FlagSpec]>();
  for (const [name, spec] of Object.entries(specs)) {
    byName.set(name, [name, spec]);
    for (const a of spec.aliases ?? []) byName.set(a, [name, spec]);
  }
  const out: ParsedFlags = { strings: new Map(), lists: new Map(), bools: new Set(), args: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const found = byName.get(name);
    if (!found) throw new UsageError(`flag provided but not defined: -${name}`);
    const [canonical, spec] = found;
    if (spec.type === "bool") {
      const v = eq >= 0 ? body.slice(eq + 1) : "true";
      if (v === "true" || v === "1") out.bools.add(canonical);
      else if (v === "false" || v === "0") out.bools.delete(canonical);
      else throw new UsageError(`invalid boolean value ${JSON.stringify(v)} for -${name}`);
    } else {
      let v: string;
      if (eq >= 0) v = body.slice(eq + 1);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}`);
        v = argv[++i];
      }
      out.strings.set(canonical, v);
      out.lists.set(canonical, [...out.lists.get(canonical) ?? [], v]);
    }
  }
  out.args = argv.slice(i);
  return out;
}

/** One line per flag, for `help` output. */
export function formatFlagHelp(specs: FlagSpecs): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const names = [name, ...(spec.aliases ?? [])].map((n) => `-${n}`).join(", ");
    const v = spec.type === "string" ? ` ${spec.value ?? "VALUE"}` : "";
    lines.push(`  ${names}${v}\n      ${spec.help}`);
  }
  return lines.join("\n");
}

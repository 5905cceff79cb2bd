/**
 * Environment variables in config values: `$VAR`, `${VAR}`, `${VAR:-default}`
 * (the default when VAR is unset or empty) and `$$` for a literal `$`. An
 * unset variable without a default is an error, never an empty string (a
 * `file://${UNSET}/rep` must not back up to `/rep`).
 */

import { isPair, isScalar, type Node as YamlNode, parseDocument, visit } from "yaml";

export class UnsetVariableError extends Error {
  constructor(readonly variable: string) {
    super(
      `environment variable ${variable} is not set (set it, write \${${variable}:-default} for a default, or pass -no-expand-env)`,
    );
    this.name = "UnsetVariableError";
  }
}

const REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Expands the references in one value; throws UnsetVariableError for an unset one. */
export function expandEnv(
  text: string,
  env: (k: string) => string | undefined = (k) => Deno.env.get(k),
): string {
  return text.replace(REF, (all, braced, dflt, bare) => {
    if (all === "$$") return "$";
    const name = braced ?? bare;
    const v = env(name);
    if (dflt !== undefined) return v ? v : dflt;
    if (v === undefined) throw new UnsetVariableError(name);
    return v;
  });
}

/**
 * Expands every string value of a parsed YAML document in place (keys and
 * comments are left alone). A plain (unquoted) value is read again as YAML
 * after expansion, so `enabled: $FLAG` with FLAG=true is a boolean. An unset
 * variable calls `fail(node, key, error)`.
 */
export function expandEnvInDocument(
  doc: Parameters<typeof visit>[0],
  fail: (node: YamlNode, key: string, e: UnsetVariableError) => never,
  env?: (k: string) => string | undefined,
): void {
  visit(doc, {
    Scalar(where, node, path) {
      if (where === "key" || typeof node.value !== "string" || !node.value.includes("$")) return;
      let expanded: string;
      try {
        expanded = expandEnv(node.value, env);
      } catch (e) {
        if (!(e instanceof UnsetVariableError)) throw e;
        const pair = [...path].reverse().find(isPair);
        fail(node, pair && isScalar(pair.key) ? String(pair.key.value) : "value", e);
      }
      if (node.type === "PLAIN") {
        const again = parseDocument(expanded).contents;
        node.value = isScalar(again) ? again.value : expanded;
      } else node.value = expanded;
      node.source = expanded;
    },
  });
}

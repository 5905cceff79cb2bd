/**
 * Release builds: one self-contained `strata` per platform with
 * `deno compile` (everything embedded: sources, npm packages, no file read
 * from the source tree at run time, SQLite is the runtime's `node:sqlite`).
 * `deno compile` downloads Deno's runtime (denort) for each target from
 * dl.deno.land, so it runs on release machines, not in CI; set DENORT_BIN to
 * use a runtime already on disk.
 *
 *   deno task compile                            # every target into dist/
 *   deno task compile x86_64-unknown-linux-gnu   # one target
 *   deno task compile bundle                     # dist/strata.js, one file for `deno run -A`
 *
 * The bundle needs no download: CI builds it and runs it from an empty
 * directory (tests/bundle_smoke_test.ts) to prove the same self-containment.
 */

import { fileURLToPath as fromFileUrl } from "node:url";

export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/**
 * V8 flags baked into every release binary. A 1 MiB young generation (V8's
 * default grows to 16 MiB per space) keeps a restore of 1 GiB at ~118 MiB
 * RSS instead of ~143, and the replicator under 2,000 commits/s at ~105
 * instead of ~119, at no measured cost in time (docs/benchmarks.md).
 */
export const V8_FLAGS = "--max-semi-space-size=1";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const MAIN = fromFileUrl(new URL("../main.ts", import.meta.url));

async function deno(args: string[], quiet: boolean): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: quiet ? "piped" : "inherit",
    stderr: quiet ? "piped" : "inherit",
  }).output();
  if (r.code !== 0) {
    throw new Error(
      `deno ${args[0]} failed (exit ${r.code})${
        quiet ? `: ${new TextDecoder().decode(r.stderr)}` : ""
      }`,
    );
  }
}

/** The output file name of a target's binary. */
export function binaryName(target: string): string {
  return `strata-${target}${target.includes("windows") ? ".exe" : ""}`;
}

export async function compile(target: string, outDir = `${ROOT}dist`): Promise<string> {
  if (!TARGETS.includes(target)) {
    throw new Error(`unknown target ${target}; one of: ${TARGETS.join(", ")}`);
  }
  const out = `${outDir}/${binaryName(target)}`;
  await deno(
    ["compile", "-A", `--v8-flags=${V8_FLAGS}`, "--target", target, "--output", out, MAIN],
    false,
  );
  return out;
}

/**
 * strata as one JavaScript file. ssh2 tries two optional native addons
 * (cpu-features, its sshcrypto.node) inside try/catch and falls back to
 * JavaScript without them; they stay outside the bundle.
 */
export async function bundle(out: string, quiet = true): Promise<string> {
  await deno([
    "bundle",
    "--platform",
    "deno",
    "--external",
    "cpu-features",
    "--external",
    "*.node",
    "--output",
    out,
    MAIN,
  ], quiet);
  // CommonJS code inside reads __dirname/__filename (ssh2's emscripten poly1305 locates itself
  // with them; it loads nothing from there): give the single ES module file those names.
  const code = await Deno.readTextFile(out);
  await Deno.writeTextFile(out, CJS_NAMES + code);
  return out;
}

const CJS_NAMES = "var __filename = import.meta.filename ?? import.meta.url, " +
  '__dirname = import.meta.dirname ?? ".";\n';

if (import.meta.main) {
  const wanted = Deno.args.length > 0 ? Deno.args : TARGETS;
  try {
    for (const t of wanted) {
      const out = t === "bundle" ? await bundle(`${ROOT}dist/strata.js`, false) : await compile(t);
      console.log(`built ${out}`);
    }
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}

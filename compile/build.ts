/**
 * Release builds: one self-contained `strata` binary per platform with
 * `deno compile`. Needs network access to Deno's runtime downloads, so it
 * runs on release machines, not in CI.
 *
 *   deno task compile                 # every target into dist/
 *   deno task compile x86_64-unknown-linux-gnu
 */

const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

const wanted = Deno.args.length > 0 ? Deno.args : TARGETS;
for (const target of wanted) {
  if (!TARGETS.includes(target)) {
    console.error(`unknown target ${target}; one of: ${TARGETS.join(", ")}`);
    Deno.exit(2);
  }
  const out = `dist/strata-${target}${target.includes("windows") ? ".exe" : ""}`;
  console.log(`building ${out}`);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "-A", "--target", target, "--output", out, "main.ts"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (r.code !== 0) Deno.exit(r.code);
}

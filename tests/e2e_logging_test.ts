/**
 * Logging of a real `strata replicate`: `logging: {type: json}` makes every
 * log line a JSON object; levels filter, with `-log-level` over `LOG_LEVEL`
 * over the config file, as in Litestream.
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { strata } from "./helpers/strata.ts";
import { addNote } from "./helpers/ops.ts";

/** Runs replicate once (the child `true` ends it at once) with `logging` and `args`. */
async function run(logging: string, args: string[] = [], env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "strata-log-" });
  try {
    const db = join(dir, "app.db");
    await addNote(db, "x");
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `${logging}
dbs:
  - path: ${db}
    replicas:
      - url: file://${join(dir, "replica")}
`,
    );
    const r = await strata(["replicate", "-config", cfg, ...args, "-exec", "true"], { env });
    assertEquals(r.code, 0, r.stderr);
    // Deno's own first-run download notes are not strata's log lines
    return r.stderr.split("\n").filter((l) => l !== "" && !/^(Download |Warning|\s*[╭│╰])/.test(l));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const levelsOf = (lines: string[]) =>
  new Set(lines.map((l) => /^\S+ (DEBUG|INFO|WARN|ERROR) /.exec(l)?.[1] ?? "?"));

Deno.test("logging type json: every line is a JSON object with time, level and msg", async () => {
  const lines = await run("logging:\n  type: json\n  level: debug");
  assert(lines.length >= 5, `only ${lines.length} lines`);
  const levels = new Set<string>();
  for (const l of lines) {
    const o = JSON.parse(l);
    assert(!Number.isNaN(Date.parse(o.time)), `time in ${l}`);
    assert(typeof o.msg === "string" && o.msg.length > 0, `msg in ${l}`);
    levels.add(o.level);
  }
  assert(levels.has("DEBUG") && levels.has("INFO"), `levels ${[...levels]}`);
  const replicating = lines.map((l) => JSON.parse(l)).find((o) => o.msg === "replicating");
  assert(replicating && typeof replicating.db === "string", "fields are JSON fields");
});

Deno.test("log levels filter: config, LOG_LEVEL over config, -log-level over both", async () => {
  const text = await run("logging:\n  level: warn");
  assertEquals(text.length, 0, `warn level printed: ${text.join("\n")}`);

  const info = await run("");
  assert(levelsOf(info).has("INFO") && !levelsOf(info).has("DEBUG"), info.join("\n"));

  const env = await run("logging:\n  level: error", [], { LOG_LEVEL: "debug" });
  assert(levelsOf(env).has("DEBUG"), `LOG_LEVEL=debug: ${env.join("\n")}`);

  const flag = await run("logging:\n  level: debug", ["-log-level", "warn"], {
    LOG_LEVEL: "debug",
  });
  assertEquals(flag.length, 0, `-log-level warn printed: ${flag.join("\n")}`);

  const bad = await strata(["replicate", "-log-level", "loud", "/x.db", "file:///tmp/x"]);
  assertEquals(bad.code, 2);
  assert(/-log-level must be debug, info, warn or error/.test(bad.stderr), bad.stderr);
});

/**
 * The end-to-end run shared by the network replica tests: a Python app writes
 * while `strata replicate -config` (its own process) ships to the replica
 * described by `replicaYaml`; then `strata restore` of the latest state must
 * equal what the app wrote, byte for byte in its rows, and pass integrity_check.
 */

import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./strata.ts";

/** `replicaYaml`: the replica's keys, one per line, unindented ("url: …\nkey-path: …"). */
export async function replicateAndRestoreLatest(
  replicaYaml: string,
  env: Record<string, string> = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "strata-e2e-remote-" });
  try {
    const db = join(dir, "app.db");
    const marks = join(dir, "marks.jsonl");
    const config = join(dir, "strata.yml");
    const keys = replicaYaml.trim().split("\n").map((l, i) =>
      (i === 0 ? "      - " : "        ") + l
    );
    await Deno.writeTextFile(
      config,
      `dbs:\n  - path: ${db}\n    replicas:\n${keys.join("\n")}\n        sync-interval: 200ms\n`,
    );
    await runWriter(db, "more", 1, marks);
    const rep = new Replicating(["-config", config], env);
    await new Promise((r) => setTimeout(r, 1500));
    await runWriter(db, "main", 2, marks);
    const stopped = await rep.stop("SIGINT");
    assertEquals(stopped.code, 0, stopped.stderr);
    const all = await readMarks(marks);
    const source = await digestOf(db);
    assertEquals(source.digest, all[all.length - 1].digest);

    const out = join(dir, "latest.db");
    const r = await strata(["restore", "-config", config, "-o", out, db], { env });
    assertEquals(r.code, 0, r.stderr);
    const restored = await digestOf(out);
    assertEquals(
      restored.digest,
      source.digest,
      `restored state; replicate said:\n${stopped.stderr}`,
    );
    assertEquals(restored.integrity, "ok");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

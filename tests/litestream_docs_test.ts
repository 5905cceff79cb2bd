/**
 * Every configuration example of Litestream's documentation (v0.3 and v0.5,
 * tests/fixtures/litestream_docs/, each naming its source) starts strata:
 * `strata databases -config` reads it (the same reading `replicate` does)
 * and lists its databases; keys strata leaves out are warned about by line.
 * Examples that are fragments (no `dbs`, a database without a replica) get
 * the smallest completion, as their page means them to be used.
 */

import { join } from "node:path";
import { isMap, isSeq, parseDocument } from "yaml";
import { PROJECT_ROOT } from "./helpers/vectors.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { strata } from "./helpers/strata.ts";

const DIR = join(PROJECT_ROOT, "tests/fixtures/litestream_docs");

/** Every variable the examples reference (a base64 value where a key must be one). */
const ENV: Record<string, string> = {
  AZURE_ACCOUNT_KEY: btoa("secretexample"),
  HETZNER_ACCESS_KEY: "hetznerkey",
  HETZNER_SECRET_KEY: "hetznersecret",
  SFTP_PASSWORD: "sftppassword",
  LITESTREAM_ACCESS_KEY_ID: "AKIAEXAMPLE",
  LITESTREAM_SECRET_ACCESS_KEY: "secretexample",
  LITESTREAM_REGION: "us-east-1",
  LITESTREAM_ENDPOINT: "https://s3.example.com",
  LITESTREAM_BUCKET: "bucket",
  PID: "4242",
};

/** The example, with a database and a replica added where it is a fragment without them. */
function completed(text: string, dir: string): string {
  const doc = parseDocument(text);
  if (!doc.has("dbs")) {
    // appended as text: the example's own lines stay as written (0600 is octal to Litestream)
    return `${text}\ndbs:\n  - path: ${join(dir, "fragment.db")}\n    replica:\n      path: ${
      join(dir, "rep")
    }\n`;
  }
  const dbs = doc.get("dbs");
  if (!isSeq(dbs)) throw new Error("dbs is not a list");
  let changed = false;
  dbs.items.forEach((db, i) => {
    if (isMap(db) && !db.has("replica") && !db.has("replicas")) {
      db.set("replica", doc.createNode({ path: join(dir, `rep-${i}`) }));
      changed = true;
    }
  });
  return changed ? doc.toString() : text;
}

Deno.test("every Litestream documentation config example starts strata", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-lsdocs-" });
  try {
    const files = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".yml"))
      .sort();
    assert(files.length >= 30, `fixtures: ${files.length}`);
    const failed: string[] = [];
    let warned = 0;
    for (const name of files) {
      const cfg = join(dir, name);
      await Deno.writeTextFile(cfg, completed(await Deno.readTextFile(join(DIR, name)), dir));
      const r = await strata(["databases", "-json", "-config", cfg], { env: ENV });
      if (r.code !== 0) {
        failed.push(`${name}: ${r.stderr.trim().split("\n").pop()}`);
        continue;
      }
      const dbs = JSON.parse(r.stdout) as { path: string; replica: string }[];
      if (dbs.length === 0) failed.push(`${name}: no databases listed`);
      warned += (r.stderr.match(/WARN/g) ?? []).length;
    }
    assertEquals(failed, [], "examples strata does not start with");
    assert(warned > 0, "some examples carry keys strata leaves out, each warned about");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

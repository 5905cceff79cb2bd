/**
 * End to end over SFTP: a Python app writes while `strata replicate` (its own
 * process) ships to OpenSSH's sshd; the latest restore equals what the app wrote.
 */

import { join } from "node:path";
import { assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./helpers/strata.ts";
import { startSshd } from "./helpers/sshd.ts";

Deno.test("e2e sftp: replicate while an app writes, restore latest exactly", async () => {
  const sshd = await startSshd();
  const dir = await Deno.makeTempDir({ prefix: "strata-e2e-sftp-" });
  try {
    const db = join(dir, "app.db");
    const marks = join(dir, "marks.jsonl");
    const config = join(dir, "strata.yml");
    await Deno.writeTextFile(
      config,
      `dbs:
  - path: ${db}
    replicas:
      - url: sftp://${sshd.user}@${sshd.host}:${sshd.port}${sshd.dataDir}/app
        key-path: ${sshd.userKeyPath}
        host-key: ${sshd.hostKey}
        sync-interval: 200ms
`,
    );
    await runWriter(db, "more", 1, marks);
    const rep = new Replicating(["-config", config]);
    await new Promise((r) => setTimeout(r, 1500));
    await runWriter(db, "main", 2, marks);
    const stopped = await rep.stop("SIGINT");
    assertEquals(stopped.code, 0, stopped.stderr);
    const all = await readMarks(marks);
    const source = await digestOf(db);
    assertEquals(source.digest, all[all.length - 1].digest);

    // the files are where Litestream puts them
    const names: string[] = [];
    for await (const e of Deno.readDir(join(sshd.dataDir, "app/ltx/0"))) names.push(e.name);
    names.forEach((n) => assertMatch(n, /^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/));

    const out = join(dir, "latest.db");
    const r = await strata(["restore", "-config", config, "-o", out, db]);
    assertEquals(r.code, 0, r.stderr);
    const restored = await digestOf(out);
    assertEquals(restored.digest, source.digest);
    assertEquals(restored.integrity, "ok");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await sshd.stop();
  }
});

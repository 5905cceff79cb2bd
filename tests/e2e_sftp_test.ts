/** End to end over SFTP, against OpenSSH's sshd started on 127.0.0.1. */

import { join } from "node:path";
import { assert, assertMatch } from "./helpers/assert.ts";
import { replicateAndRestoreLatest } from "./helpers/e2e_remote.ts";
import { startSshd } from "./helpers/sshd.ts";

Deno.test("e2e sftp: replicate while an app writes, restore latest exactly", async () => {
  const sshd = await startSshd();
  try {
    await replicateAndRestoreLatest(
      `url: sftp://${sshd.user}@${sshd.host}:${sshd.port}${sshd.dataDir}/app
key-path: ${sshd.userKeyPath}
host-key: ${sshd.hostKey}`,
    );
    // the files are where Litestream puts them
    const names: string[] = [];
    for await (const e of Deno.readDir(join(sshd.dataDir, "app/ltx/0"))) names.push(e.name);
    assert(names.length > 0);
    names.forEach((n) => assertMatch(n, /^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$/));
  } finally {
    await sshd.stop();
  }
});

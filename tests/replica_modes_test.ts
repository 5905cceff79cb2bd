/**
 * Replica files and directories are never more readable than the database
 * they copy: with the database at 0600, a file replica (and an SFTP replica)
 * holds 0600 files and 0700 directories, lock.json included, and so does the
 * local meta directory (L0 files, kept L1 files, the lock). strata and the
 * app run as separate processes.
 */

import { join } from "node:path";
import { assert } from "./helpers/assert.ts";
import { App, createAppDb, LiveStrata, waitFor } from "./helpers/live.ts";
import { sshdAvailable, startSshd } from "./helpers/sshd.ts";

/** Paths under `root` (itself included when `withRoot`) whose mode has group/other bits. */
async function tooOpen(root: string, withRoot: boolean): Promise<string[]> {
  const bad: string[] = [];
  const walk = async (p: string, self: boolean) => {
    const st = await Deno.lstat(p);
    if (self && (st.mode! & 0o077) !== 0) bad.push(`${p} ${(st.mode! & 0o777).toString(8)}`);
    if (st.isDirectory) {
      for await (const e of Deno.readDir(p)) await walk(join(p, e.name), true);
    }
  };
  await walk(root, withRoot);
  return bad;
}

async function replicateInto(replicaYaml: string, replicaRoot: string, withRoot: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "strata-modes-" });
  const db = join(dir, "app.db");
  await createAppDb(db);
  await Deno.chmod(db, 0o600);
  const cfg = join(dir, "strata.yml");
  await Deno.writeTextFile(
    cfg,
    `levels:
  - interval: 1s
  - interval: 4s
dbs:
  - path: ${db}
    monitor-interval: 50ms
    replicas:
${replicaYaml}`,
  );
  const app = new App(db, 0.02);
  const proc = new LiveStrata(["-config", cfg]);
  let stopped = false;
  try {
    // L0 and L1 files, and the lease, are in the replica
    await waitFor("L0 and L1 files in the replica", async () => {
      const l1 = await Deno.readDir(join(replicaRoot, "ltx", "1"))[Symbol.asyncIterator]().next()
        .catch(() => ({ done: true }));
      return !l1.done;
    });
    await app.stop();
    const { code, log } = await proc.stop();
    stopped = true;
    assert(code === 0, `strata exited ${code}: ${log.slice(-2000)}`);
    const bad = await tooOpen(replicaRoot, withRoot);
    assert(bad.length === 0, `more readable than the 0600 database:\n${bad.join("\n")}`);
    // the local meta directory holds copies of the same pages
    const local = await tooOpen(join(dir, ".app.db-strata"), true);
    assert(local.length === 0, `local files more readable than the database:\n${local.join("\n")}`);
  } finally {
    await app.stop();
    if (!stopped) await proc.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a file replica of a 0600 database holds 0600 files and 0700 directories", async () => {
  const parent = await Deno.makeTempDir({ prefix: "strata-modes-rep-" });
  const rep = join(parent, "replica"); // created by strata
  try {
    await replicateInto(
      `      - type: file\n        path: ${rep}\n        sync-interval: 100ms\n`,
      rep,
      true,
    );
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test({
  name: "an sftp replica of a 0600 database holds 0600 files and 0700 directories",
  ignore: !sshdAvailable(),
  async fn() {
    const sshd = await startSshd();
    try {
      const rep = join(sshd.dataDir, "app");
      await replicateInto(
        `      - url: sftp://${sshd.user}@${sshd.host}:${sshd.port}${rep}
        key-path: ${sshd.userKeyPath}
        host-key: ${sshd.hostKey}
        sync-interval: 100ms
`,
        rep,
        true,
      );
    } finally {
      await sshd.stop();
    }
  },
});

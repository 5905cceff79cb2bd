/**
 * `strata demo`: the main job on a local directory replica. Creates a sample
 * database, lets a writer (a separate process) commit transactions while
 * replication runs, stops cleanly, then restores the latest state and a
 * mid-way timestamp and verifies both.
 */

import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { databaseChecksumOfPages, formatChecksum, formatTXID } from "../ltx/mod.ts";
import { FileReplicaClient } from "../storage/mod.ts";
import { DbReplication } from "../replicate/mod.ts";
import { executeRestore, listAllFiles, planRestore, restoreTarget } from "../restore/mod.ts";
import { BranchReplicaClient, cloneReplica } from "../branch/mod.ts";
import { configureLogging } from "../log.ts";

/** The demo's app: a separate process (this same program, `demo -writer`), never a thread. */
function runWriterHere(path: string, from: number, count: number): Promise<void> {
  const db = new DatabaseSync(path, { timeout: 5000 });
  const ins = db.prepare("INSERT INTO notes (body, created) VALUES (?, ?)");
  return (async () => {
    for (let i = from; i < from + count; i++) {
      ins.run("note " + i + ": " + "lorem ipsum ".repeat(i % 9), new Date().toISOString());
      if (i % 50 === 0) db.exec("UPDATE notes SET body = body || '!' WHERE id % 7 = " + (i % 7));
      await new Promise((r) => setTimeout(r, 2));
    }
    db.close();
  })();
}

function rowsOf(path: string): { count: number; digest: string } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const r = db.prepare(
      "SELECT count(*) AS n, total(length(body)) AS len, group_concat(id) AS ids FROM notes",
    ).get() as {
      n: number;
      len: number;
      ids: string;
    };
    return { count: Number(r.n), digest: `${r.n}/${r.len}/${r.ids?.length ?? 0}` };
  } finally {
    db.close();
  }
}

/**
 * Starts the writer as a child process of this same program: a compiled
 * binary runs itself, `deno run` runs its main module again (a file path or
 * a bundle), so the demo needs nothing from the source tree.
 */
async function runWriter(db: string, from: number, count: number): Promise<void> {
  const self = Deno.build.standalone ? [] : ["run", "-A", Deno.mainModule];
  const r = await new Deno.Command(Deno.execPath(), {
    args: [...self, "demo", "-writer", db, String(from), String(count)],
  }).output();
  if (r.code !== 0) throw new Error(`demo writer failed: ${new TextDecoder().decode(r.stderr)}`);
}

export async function runDemo(args: string[]): Promise<number> {
  if (args[0] === "-writer") {
    await runWriterHere(args[1], Number(args[2]), Number(args[3]));
    return 0;
  }
  if (args.includes("-h") || args.includes("--help")) {
    console.log(
      "Usage: strata demo\n\nReplicates a sample database to a local directory while a writer runs, then restores and verifies.",
    );
    return 0;
  }
  configureLogging({ level: "warn" });
  const dir = await Deno.makeTempDir({ prefix: "strata-demo-" });
  try {
    const dbPath = join(dir, "app.db");
    const replicaPath = join(dir, "replica");
    const setup = new DatabaseSync(dbPath);
    setup.exec(
      "PRAGMA journal_mode=WAL; CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, created TEXT)",
    );
    setup.close();
    console.log(`1. database ${dbPath}`);

    const rep = new DbReplication({
      dbPath,
      monitorIntervalMs: 100,
      replicas: [{ client: new FileReplicaClient(replicaPath), syncIntervalMs: 200 }],
    });
    await rep.start();
    console.log(
      `2. replicating to ${replicaPath} (sync every 200ms); a writer process commits 600 transactions`,
    );
    await runWriter(dbPath, 0, 300);
    await new Promise((r) => setTimeout(r, 600));
    const midTime = new Date();
    const mid = rowsOf(dbPath);
    await new Promise((r) => setTimeout(r, 600));
    await runWriter(dbPath, 300, 300);
    await rep.stop();
    const final = rowsOf(dbPath);
    const client = new FileReplicaClient(replicaPath);
    const files = await listAllFiles(client);
    console.log(
      `3. stopped cleanly at TXID ${
        formatTXID(rep.monitor.position.txid)
      }: ${files.length} LTX files in the replica`,
    );

    let ok = true;
    for (
      const [label, target, want] of [
        ["latest", {}, final],
        [`as of ${midTime.toISOString()}`, { timestamp: midTime }, mid],
      ] as const
    ) {
      const out = join(dir, `restored-${label.startsWith("latest") ? "latest" : "mid"}.db`);
      const plan = planRestore(files, target, replicaPath);
      const r = await executeRestore(client, plan, out, { integrityCheck: "full" });
      const got = rowsOf(out);
      const bytes = await Deno.readFile(out);
      const pages = [];
      for (let i = 0; i < bytes.length; i += r.pageSize) {
        pages.push(bytes.subarray(i, i + r.pageSize));
      }
      const sumOk = databaseChecksumOfPages(pages, r.pageSize) === r.checksum;
      const same = got.digest === want.digest;
      ok &&= same && sumOk;
      console.log(
        `4. restore ${label}: TXID ${
          formatTXID(r.txid)
        } from ${r.files} files, ${got.count} rows ` +
          `(${same ? "equal to the source" : "DIFFERENT from the source"}), integrity_check ok, ` +
          `checksum ${formatChecksum(r.checksum)} ${sumOk ? "verified" : "MISMATCH"}`,
      );
    }
    // a branch at the mid-way moment: a manifest only, restored like any replica
    const branchPath = join(dir, "branch");
    const clone = await cloneReplica({
      source: client,
      sourceUrl: `file://${replicaPath}`,
      dest: new FileReplicaClient(branchPath),
      destUrl: `file://${branchPath}`,
      target: { timestamp: midTime },
    });
    const branch = new BranchReplicaClient(new FileReplicaClient(branchPath), () => client);
    const staged = join(dir, "staging.db");
    const br = await restoreTarget(branch, {}, staged, { integrityCheck: "full" });
    const same = rowsOf(staged).digest === mid.digest;
    ok &&= same;
    console.log(
      `5. clone at ${midTime.toISOString()}: branch ${branchPath} (${clone.uploaded} bytes written, ` +
        `${clone.manifest.files.length} source files referenced); its restore has ${
          rowsOf(staged).count
        } rows at TXID ${formatTXID(br.txid)} (${same ? "equal to the source then" : "DIFFERENT"})`,
    );
    console.log(ok ? "demo passed: every restore equals the source" : "demo FAILED");
    return ok ? 0 : 1;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

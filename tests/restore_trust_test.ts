/**
 * A replica file's name is never trusted over its content (issue 15, items
 * 1 and 16): with real `strata replicate` processes writing a file replica
 * and an S3 (fauxqs) replica while an app writes, files are renamed, copied
 * in from another database, or corrupted; `restore`, `verify` and
 * `restore -f` either restore exactly the source's data along another
 * verified path (saying which file they left out) or refuse, naming the file.
 */

import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { strata } from "./helpers/strata.ts";
import { startS3Server, TEST_CREDENTIALS } from "./helpers/fauxqs.ts";
import { listAllFiles } from "../src/restore/mod.ts";
import { formatLtxFileName } from "../src/ltx/mod.ts";
import {
  bytesOf,
  digestOf,
  foreignDatabase,
  maxTXID,
  put,
  replicatedSource,
  SNAPSHOT,
  snapshotOf,
  waitFor,
} from "./helpers/trust.ts";

Deno.test("renamed and foreign replica files: restore and verify never trust a file's name", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-trust-" });
  const env = TEST_CREDENTIALS;
  try {
    const src = await replicatedSource(dir, s3.endpoint, await s3.createBucket());
    const source = await digestOf(src.db);
    const foreign = await foreignDatabase(dir);
    const out = join(dir, "out.db");
    const fresh = async () => await Deno.remove(out).catch(() => {});

    for (const r of src.replicas) {
      const c = r.client;
      const files = await listAllFiles(c);
      const top = await maxTXID(c);
      const ok = await strata(["restore", "-o", out, r.url], { env });
      assertEquals(ok.code, 0, ok.stderr);
      assertEquals((await digestOf(out)).digest, source.digest, `${r.kind}: baseline`);
      await fresh();

      // 1. the newest L0 file renamed to claim 3 more TXIDs
      const l0 = files.filter((f) => f.level === 0);
      const newest = l0[l0.length - 1];
      const original = await bytesOf(c, newest);
      const fake = { level: 0, minTXID: newest.minTXID, maxTXID: newest.maxTXID + 3n };
      await put(c, 0, fake.minTXID, fake.maxTXID, original);
      await c.deleteFiles([newest]);
      const fakeName = formatLtxFileName(fake.minTXID, fake.maxTXID);
      const renamed = await strata(["restore", "-o", out, r.url], { env });
      assertEquals(renamed.code, 1, `${r.kind}: renamed file restored: ${renamed.stdout}`);
      assert(renamed.stderr.includes(fakeName), `${r.kind}: names ${fakeName}: ${renamed.stderr}`);
      assert(/header covers TXIDs/.test(renamed.stderr), renamed.stderr);
      assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing restored");
      const v1 = await strata(["verify", "-no-progress", r.url], { env });
      assertEquals(v1.code, 1, `${r.kind}: verify said ${v1.stdout}`);
      assert(v1.stdout.includes("FAILED") && v1.stdout.includes(fakeName), v1.stdout);
      await c.deleteFiles([fake]);
      await put(c, 0, newest.minTXID, newest.maxTXID, original);

      // 2. another database's snapshot copied in as the newest snapshot, as it was
      //    (its header says TXID 1) and re-labelled (its header says what the name says)
      const foreignSnaps = [
        { how: "copied", bytes: await snapshotOf(foreign, 1n) },
        { how: "re-labelled", bytes: await snapshotOf(foreign, top) },
      ];
      const snapName = formatLtxFileName(1n, top);
      for (const fs of foreignSnaps) {
        await put(c, SNAPSHOT, 1n, top, fs.bytes);
        const rr = await strata(["restore", "-o", out, r.url], { env });
        assertEquals(rr.code, 0, `${r.kind} ${fs.how}: ${rr.stderr}`);
        assertEquals(
          (await digestOf(out)).digest,
          source.digest,
          `${r.kind} ${fs.how}: the source's data, not the other database's`,
        );
        assert(
          rr.stderr.includes(`L9/${snapName}`),
          `${r.kind} ${fs.how}: says it left out L9/${snapName}: ${rr.stderr}`,
        );
        await fresh();
        const v = await strata(["verify", "-no-progress", r.url], { env });
        assertEquals(v.code, 1, `${r.kind} ${fs.how}: verify said ${v.stdout}`);
        assert(v.stdout.includes(`L9/${snapName}`), v.stdout);
        await c.deleteFiles([{ level: SNAPSHOT, minTXID: 1n, maxTXID: top }]);
      }
      const after = await strata(["verify", "-no-progress", r.url], { env });
      assertEquals(after.code, 0, `${r.kind}: restored replica verifies: ${after.stdout}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

Deno.test("restore -f: a renamed or foreign file is refused by name; the copy keeps the source's data", async () => {
  const s3 = await startS3Server();
  const dir = await Deno.makeTempDir({ prefix: "strata-trust-follow-" });
  const env = TEST_CREDENTIALS;
  try {
    const src = await replicatedSource(dir, s3.endpoint, await s3.createBucket());
    const source = await digestOf(src.db);
    const foreign = await foreignDatabase(dir);
    for (const r of src.replicas) {
      const c = r.client;
      const out = join(dir, `follow-${r.kind}.db`);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(import.meta.dirname!, "..", "main.ts"),
          "restore",
          "-f",
          "-o",
          out,
          r.url,
        ],
        env: { NO_COLOR: "1", ...env },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let log = "";
      const pump = (async () => {
        for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) log += t;
      })();
      const stdout = new Response(child.stdout).text();
      try {
        await waitFor(`${r.kind}: follow started`, () => log.includes("following replica"));
        assertEquals((await digestOf(out)).digest, source.digest);
        const files = await listAllFiles(c);
        const top = await maxTXID(c);
        const l0 = files.filter((f) => f.level === 0);
        const newest = l0[l0.length - 1];
        // the newest L0 file copied in as the next TXIDs; another database's snapshot beyond
        await put(c, 0, top + 1n, top + 2n, await bytesOf(c, newest));
        await put(c, SNAPSHOT, 1n, top + 3n, await snapshotOf(foreign, 1n));
        const renamed = formatLtxFileName(top + 1n, top + 2n);
        const snap = formatLtxFileName(1n, top + 3n);
        await waitFor(
          `${r.kind}: follow refuses both files`,
          () => log.includes(renamed) && log.includes(snap),
        );
        assert(/failed its checks/.test(log), log);
        assertEquals((await digestOf(out)).digest, source.digest, `${r.kind}: copy unchanged`);
      } finally {
        child.kill("SIGINT");
        await child.status;
        await pump;
        await stdout;
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await s3.stop();
  }
});

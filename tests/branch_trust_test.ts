/**
 * A branch's manifest is data from a replica, not an order: a restore checks
 * the base the source holds against the checksum the manifest pinned
 * (a recreated source, or a manifest pointed at another replica, is refused),
 * and follows the manifest's source URL with the user's credentials only to
 * the branch's own store or to a source the user allowed.
 */

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, strata, writeAndReplicate } from "./helpers/strata.ts";
import { exists } from "../src/fsutil.ts";
import { parseReplicaUrl } from "../src/config/mod.ts";
import type { S3ReplicaConfig } from "../src/config/s3_config.ts";
import { s3ClientOptions } from "../src/config/s3_config.ts";
import { S3ReplicaClient } from "../src/storage/s3_client.ts";
import { BRANCH_MANIFEST_LEVEL, readBranchManifest, writeManifest } from "../src/branch/mod.ts";

/** The first full copy: the replica's first snapshot. */
const FIRST = join("ltx", "9", "0000000000000001-0000000000000001.ltx");

async function setManifestSource(branch: string, source: string): Promise<void> {
  const dir = join(branch, "ltx", "10");
  const [name] = [...Deno.readDirSync(dir)].map((e) => e.name);
  const doc = JSON.parse(await Deno.readTextFile(join(dir, name)));
  doc.source = source;
  await Deno.writeTextFile(join(dir, name), JSON.stringify(doc, null, 2) + "\n");
}

Deno.test("a branch whose source was recreated, or whose manifest names another replica, is refused by its pinned checksum", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-base-" });
  try {
    const source = join(dir, "source");
    const branch = join(dir, "branch");
    const a = join(dir, "a.db");
    await writeAndReplicate(a, 41, `file://${source}`, () => exists(join(source, FIRST)));
    const c = await strata(["clone", `file://${source}`, `file://${branch}`]);
    assertEquals(c.code, 0, c.stderr);
    const good = join(dir, "good.db");
    const ok = await strata(["restore", "-no-progress", "-o", good, `file://${branch}`]);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals((await digestOf(good)).digest, (await digestOf(a)).digest);

    // the source recreated at the same URL, holding another database (same file names)
    await Deno.rename(source, join(dir, "source-old"));
    const d = join(dir, "d.db");
    await writeAndReplicate(d, 42, `file://${source}`, () => exists(join(source, FIRST)));
    const recreated = await strata([
      "restore",
      "-no-progress",
      "-o",
      join(dir, "r1.db"),
      `file://${branch}`,
    ]);
    assertEquals(recreated.code, 1, recreated.stdout);
    assertMatch(
      recreated.stderr,
      /branch .*branch: its source .*source does not hold the base its manifest pins \(TXID 0000000000000001, checksum [0-9a-f]{16}\)/,
    );
    assert(!(await exists(join(dir, "r1.db"))), "a refused restore left a database");

    // the manifest pointed at another replica (the original source is back at its URL)
    await Deno.rename(source, join(dir, "other"));
    await Deno.rename(join(dir, "source-old"), source);
    await setManifestSource(branch, `file://${join(dir, "other")}`);
    const other = await strata([
      "restore",
      "-no-progress",
      "-o",
      join(dir, "r2.db"),
      `file://${branch}`,
    ]);
    assertEquals(other.code, 1, other.stdout);
    assertMatch(other.stderr, /its source .*other does not hold the base its manifest pins/);
    assert(!(await exists(join(dir, "r2.db"))), "a refused restore left a database");

    // pointed back at the source it was made from, it restores again
    await setManifestSource(branch, `file://${source}`);
    const back = join(dir, "back.db");
    const again = await strata(["restore", "-no-progress", "-o", back, `file://${branch}`]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals((await digestOf(back)).digest, (await digestOf(a)).digest);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a branch manifest naming another endpoint is not followed (no request reaches it) unless -allow-source allows it", async () => {
  const { startS3Server, TEST_CREDENTIALS } = await import("./helpers/fauxqs.ts");
  const s3 = await startS3Server();
  // the endpoint a hostile manifest names: it counts what reaches it
  const reached: string[] = [];
  const trap = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    reached.push(`${req.method} ${new URL(req.url).pathname}`);
    return new Response("no", { status: 500 });
  });
  const trapUrl = `http://127.0.0.1:${trap.addr.port}`;
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-source-" });
  const env = { ...TEST_CREDENTIALS, STRATA_CACHE_DIR: join(dir, "cache") };
  try {
    const bucket = await s3.createBucket();
    const src = `s3://${bucket}/prod?endpoint=${s3.endpoint}`;
    const branchUrl = `s3://${bucket}/pr-1?endpoint=${s3.endpoint}`;
    const srcClient = new S3ReplicaClient({
      ...s3ClientOptions(parseReplicaUrl(src) as S3ReplicaConfig),
      accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
      secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
    });
    const a = join(dir, "a.db");
    await writeAndReplicate(a, 51, src, async () => (await srcClient.listFiles(9)).length > 0, env);
    const c = await strata(["clone", src, branchUrl], { env });
    assertEquals(c.code, 0, c.stderr);
    const ok = await strata(["restore", "-no-progress", "-o", join(dir, "ok.db"), branchUrl], {
      env,
    });
    assertEquals(ok.code, 0, ok.stderr);

    // the branch's manifest rewritten to send the base reads to another endpoint
    const branch = new S3ReplicaClient({
      ...s3ClientOptions(parseReplicaUrl(branchUrl) as S3ReplicaConfig),
      accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
      secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
    });
    const m = (await readBranchManifest(branch))!;
    const hostile = `s3://${bucket}/prod?endpoint=${trapUrl}`;
    await writeManifest(branch, BRANCH_MANIFEST_LEVEL, { ...m, source: hostile });

    const out = join(dir, "r.db");
    const refused = await strata(["restore", "-no-progress", "-o", out, branchUrl], { env });
    assertEquals(refused.code, 1, refused.stdout);
    assertMatch(
      refused.stderr,
      /branch .*pr-1.*: its manifest names the source s3:\/\/.*127\.0\.0\.1/,
    );
    assertMatch(refused.stderr, /not on the branch's own store .*pass -allow-source/);
    assertEquals(reached, [], "a request reached the endpoint the manifest named");
    assert(!(await exists(out)), "a refused restore left a database");
    // verify and clone -delete refuse it the same way
    const v = await strata(["verify", "-no-progress", branchUrl], { env });
    assertEquals(v.code, 1, v.stdout + v.stderr);
    assertMatch(v.stdout + v.stderr, /pass -allow-source/);
    const del = await strata(["clone", "-delete", branchUrl], { env });
    assertEquals(del.code, 1, del.stdout);
    assertMatch(del.stderr, /not on the branch's own store/);
    assertEquals(reached, [], "a request reached the endpoint the manifest named");

    // allowed by the user, it is followed (and the trap's answer fails the restore)
    const allowed = await strata([
      "restore",
      "-no-progress",
      "-allow-source",
      `s3://${bucket}?endpoint=${trapUrl}`,
      "-o",
      out,
      branchUrl,
    ], { env });
    assertEquals(allowed.code, 1, allowed.stdout);
    assert(reached.length > 0, "-allow-source did not allow the source");
    assert(!(await exists(out)), "a failed restore left a database");
  } finally {
    await trap.shutdown();
    await s3.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

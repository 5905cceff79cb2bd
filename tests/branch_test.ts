/**
 * Branches and the restore cache on a small replica built file by file
 * (real LTX files with real checksums): source retention keeps what a live
 * branch points at and releases it when the branch is deleted; the cache
 * makes a second restore download only the new files, survives a corrupted
 * cached file and stays within its bound; bad manifests are named errors.
 */

import { dirname, join } from "node:path";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import {
  databaseChecksumOfPages,
  encodeLtx,
  formatLtxFileName,
  LtxNameMismatchError,
  makeHeader,
} from "../src/ltx/mod.ts";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { CountingClient } from "./helpers/counting_client.ts";
import {
  CachingReplicaClient,
  RestoreCache,
  restoreTarget,
  restoreTargetCached,
} from "../src/restore/mod.ts";
import { Compactor, DEFAULT_COMPACTION, ReplicaIndex } from "../src/replicate/mod.ts";
import {
  BRANCH_REGISTRY_LEVEL,
  BranchError,
  BranchReplicaClient,
  cloneReplica,
  decodeManifest,
  deleteBranch,
  encodeManifest,
  publicReplicaUrl,
  writeSeedPosition,
} from "../src/branch/mod.ts";

const PS = 4096;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 1);

/** The single-page database state after TXID `txid`. */
function pageAt(txid: bigint): Uint8Array {
  const p = new Uint8Array(PS);
  for (let i = 0; i < PS; i += 8) p[i] = Number((txid * 31n + BigInt(i)) % 251n);
  return p;
}

function sumAt(txid: bigint): bigint {
  return databaseChecksumOfPages([pageAt(txid)], PS);
}

async function put(client: FileReplicaClient, level: number, min: bigint, max: bigint, at: number) {
  const bytes = await encodeLtx(
    makeHeader({
      pageSize: PS,
      commit: 1,
      minTXID: min,
      maxTXID: max,
      timestamp: BigInt(at),
      preApplyChecksum: min === 1n ? 0n : sumAt(min - 1n),
    }),
    [{ pgno: 1, data: pageAt(max) }],
    min === 1n ? undefined : sumAt(max),
  );
  await client.writeFile(level, min, max, ReadableStream.from([bytes]), new Date(at));
}

/**
 * Snapshot 1-1 (old), L0 2..10 and L1 2-10 an hour later, a newer snapshot
 * 1-10 at 25 h: retention at 26 h deletes the old snapshot, L1 and L0 but
 * its newest file.
 */
async function buildSource(root: string): Promise<FileReplicaClient> {
  const c = new FileReplicaClient(root);
  await put(c, 9, 1n, 1n, T0);
  for (let t = 2n; t <= 10n; t++) await put(c, 0, t, t, T0 + HOUR + Number(t) * 1000);
  await put(c, 1, 2n, 10n, T0 + HOUR + 11_000);
  await put(c, 9, 1n, 10n, T0 + 25 * HOUR);
  return c;
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

Deno.test("source retention keeps the files a live branch points at, until the branch is deleted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-ret-" });
  try {
    const source = await buildSource(join(dir, "source"));
    const dest = new FileReplicaClient(join(dir, "branch"));
    const clone = await cloneReplica({
      source,
      sourceUrl: `file://${dir}/source`,
      dest,
      destUrl: `file://${dir}/branch`,
      target: { txid: 5n },
      clock: () => T0 + 25 * HOUR + 1,
    });
    // plan: the old snapshot and L0 2..5 (L1 2-10 and the new snapshot pass TXID 5)
    assertEquals(
      clone.manifest.files.map((f) => `${f.level}/${f.minTXID}-${f.maxTXID}`),
      ["9/1-1", "0/2-2", "0/3-3", "0/4-4", "0/5-5"],
    );
    assertEquals(clone.manifest.base.checksum, sumAt(5n));
    assert(clone.uploaded < 64 * 1024);

    const index = new ReplicaIndex(source);
    const compactor = new Compactor(index, DEFAULT_COMPACTION);
    const now = T0 + 26 * HOUR;
    const gone = await compactor.enforceRetention(now);
    const goneKeys = gone.map((f) => `${f.level}/${f.minTXID}-${f.maxTXID}`).sort();
    // the newest L0 file stays (Litestream reads a replica's position from L0 alone)
    assertEquals(goneKeys, ["0/6-6", "0/7-7", "0/8-8", "0/9-9", "1/2-10"].sort());
    for (const f of clone.manifest.files) {
      assert(await exists(source.filePath(f.level, f.minTXID, f.maxTXID)), `${f.level} deleted`);
    }

    // the branch still restores its base, verified against the checksum chain
    const branch = new BranchReplicaClient(dest, () => source);
    const out = join(dir, "branch.db");
    const r = await restoreTarget(branch, {}, out, { integrityCheck: "none" });
    assertEquals(r.txid, 5n);
    assertEquals(r.checksum, sumAt(5n));
    assertEquals(await Deno.readFile(out), pageAt(5n));
    // the base files are the branch's level-9 entries; its retention never deletes them
    assertEquals(
      (await branch.listFiles(9)).map((f) => `${f.level}/${f.minTXID}-${f.maxTXID}`),
      ["9/1-1", "9/2-2", "9/3-3", "9/4-4", "9/5-5"],
    );
    assertEquals(await branch.listFiles(0), []);
    await branch.deleteFiles(await branch.listFiles(9));
    assert(await exists(source.filePath(9, 1n, 1n)));

    // the restored database gets a position file at the base for `strata replicate`
    const seed = await writeSeedPosition(out, {
      txid: r.txid,
      checksum: r.checksum,
      pageSize: r.pageSize,
      pages: r.pages,
    });
    assert(seed?.endsWith(formatLtxFileName(5n, 5n)), `seed at ${seed}`);

    // the branch's own history: L0 6..8 after the base (also in the local directory beside the
    // seed, as `strata replicate` leaves them); L1 merges only those, never the base or the seed
    for (let t = 6n; t <= 8n; t++) {
      await put(dest, 0, t, t, T0 + 26 * HOUR + Number(t));
      await Deno.copyFile(dest.filePath(0, t, t), join(dirname(seed!), formatLtxFileName(t, t)));
    }
    const branchIndex = new ReplicaIndex(branch);
    const branchCompactor = new Compactor(branchIndex, DEFAULT_COMPACTION, {
      localL0Dir: dirname(seed!),
    });
    const l1 = await branchCompactor.compact(1);
    assertEquals([l1?.minTXID, l1?.maxTXID], [6n, 8n]);
    assertEquals(await exists(join(dir, "branch", "ltx", "1", formatLtxFileName(6n, 8n))), true);
    const r8 = await restoreTarget(branch, {}, join(dir, "branch-8.db"), {
      integrityCheck: "none",
    });
    assertEquals([r8.txid, r8.checksum], [8n, sumAt(8n)]);
    assertEquals(await Deno.readFile(join(dir, "branch-8.db")), pageAt(8n));

    // deleting the branch releases them
    const del = await deleteBranch(dest, () => source);
    assertEquals(del.deleted, 4); // L0 6..8 and L1 6-8
    assertEquals(await source.listFiles(BRANCH_REGISTRY_LEVEL), []);
    const released = await compactor.enforceRetention(now);
    assertEquals(
      released.map((f) => `${f.level}/${f.minTXID}-${f.maxTXID}`).sort(),
      ["0/2-2", "0/3-3", "0/4-4", "0/5-5", "9/1-1"],
    );
    assertEquals(
      (await restoreTarget(source, {}, join(dir, "latest.db"), {
        integrityCheck: "none",
      })).checksum,
      sumAt(10n),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retention deletes nothing when a branch registration cannot be read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-bad-" });
  try {
    const source = await buildSource(join(dir, "source"));
    await source.writeFile(
      BRANCH_REGISTRY_LEVEL,
      3n,
      0x8000000000000001n,
      ReadableStream.from([new TextEncoder().encode("{not json")]),
      new Date(T0),
    );
    const compactor = new Compactor(new ReplicaIndex(source), DEFAULT_COMPACTION);
    assertEquals(await compactor.enforceRetention(T0 + 26 * HOUR), []);
    assertEquals((await source.listFiles(0)).length, 9);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore cache: a nearby second restore downloads only the new files; corrupt copies are refetched; bounded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-cache-" });
  try {
    const file = await buildSource(join(dir, "source"));
    // only the old snapshot and L0, so points 5 and 7 share their first files
    await file.deleteFiles([{ level: 1, minTXID: 2n, maxTXID: 10n }, {
      level: 9,
      minTXID: 1n,
      maxTXID: 10n,
    }]);
    const counting = new CountingClient(file);
    const cache = new RestoreCache(join(dir, "cache"), 1 << 20);
    const client = new CachingReplicaClient(counting, cache);
    const restore = async (txid: bigint, name: string) => {
      counting.bytes = 0;
      counting.opened = [];
      const r = await restoreTargetCached(client, { txid }, join(dir, name), {
        integrityCheck: "none",
        cache,
      });
      assertEquals(r.checksum, sumAt(txid));
      assertEquals(await Deno.readFile(join(dir, name)), pageAt(txid));
      // (in name order: the next planned files download while one is applied)
      return [...counting.opened].sort();
    };
    const sizes = new Map(
      (await Promise.all([0, 9].map((l) => file.listFiles(l)))).flat().map((
        f,
      ) => [`${f.level}/${formatLtxFileName(f.minTXID, f.maxTXID)}`, f.size]),
    );
    assertEquals((await restore(5n, "a.db")).length, 5);
    // a nearby point: only 6 and 7 are downloaded
    assertEquals(await restore(7n, "b.db"), [
      `0/${formatLtxFileName(6n, 6n)}`,
      `0/${formatLtxFileName(7n, 7n)}`,
    ]);
    assertEquals(
      counting.bytes,
      sizes.get(`0/${formatLtxFileName(6n, 6n)}`)! + sizes.get(`0/${formatLtxFileName(7n, 7n)}`)!,
    );
    assertEquals(await restore(7n, "c.db"), []);

    // a cached file with flipped bytes (same size): the restore evicts it and reads the replica
    const cached = await cache.pathFor(client.location, 0, 4n, 4n);
    const bytes = await Deno.readFile(cached);
    bytes[bytes.length - 30] ^= 0xff;
    await Deno.writeFile(cached, bytes);
    const refetched = await restore(7n, "d.db");
    assert(refetched.length >= 1, "the corrupted file was not fetched again");
    assertEquals(await restore(7n, "e.db"), []);

    // bounded: a tiny cache keeps at most its size
    const small = new RestoreCache(join(dir, "small"), 3000); // two of these files
    const c2 = new CachingReplicaClient(counting, small);
    await restoreTargetCached(c2, { txid: 7n }, join(dir, "f.db"), {
      integrityCheck: "none",
      cache: small,
    });
    let total = 0;
    for await (const l of Deno.readDir(join(dir, "small"))) {
      for await (const lv of Deno.readDir(join(dir, "small", l.name))) {
        for await (const f of Deno.readDir(join(dir, "small", l.name, lv.name))) {
          total += (await Deno.stat(join(dir, "small", l.name, lv.name, f.name))).size;
        }
      }
    }
    assert(total > 0 && total <= 3000, `small cache holds ${total} bytes`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad branch manifests are errors naming the manifest and the problem", async () => {
  const good = {
    id: 0x8000000000000abcn,
    source: "s3://bucket/prod",
    dest: "s3://bucket/pr-1",
    base: { txid: 3n, checksum: 0x8000000000000001n, pageSize: 4096, time: new Date(T0) },
    files: [
      { level: 9, minTXID: 1n, maxTXID: 2n, size: 10, createdAt: new Date(T0) },
      { level: 0, minTXID: 3n, maxTXID: 3n, size: 10, createdAt: new Date(T0) },
    ],
    createdAt: new Date(T0),
  };
  assertEquals(decodeManifest(encodeManifest(good), "m"), good);
  const doc = JSON.parse(new TextDecoder().decode(encodeManifest(good)));
  const cases: [unknown, RegExp][] = [
    [{ ...doc, version: 2 }, /version 2 is not supported/],
    [{ ...doc, format: "x" }, /format is not/],
    [{ ...doc, files: [doc.files[1]] }, /do not start with a snapshot/],
    [{ ...doc, files: [doc.files[0]] }, /do not end at base.txid/],
    [{ ...doc, base: { ...doc.base, txid: "zz" } }, /base.txid is not 16 hex digits/],
    [{ ...doc, files: [{ ...doc.files[0], level: 12 }, doc.files[1]] }, /files\[0\].level/],
  ];
  for (const [bad, re] of cases) {
    const e = await assertRejects(
      () => Promise.resolve(decodeManifest(new TextEncoder().encode(JSON.stringify(bad)), "X")),
      BranchError,
    );
    assert(re.test(e.message) && e.message.includes("X"), e.message);
  }
  const e = await assertRejects(
    () => Promise.resolve(decodeManifest(new TextEncoder().encode("{oops"), "Y")),
    BranchError,
  );
  assert(/Y: not JSON/.test(e.message), e.message);
});

Deno.test("manifests store replica URLs without secrets, paths as absolute file URLs", () => {
  assertEquals(
    publicReplicaUrl("sftp://backup:hunter2@nas:2222/srv/app"),
    "sftp://backup@nas:2222/srv/app",
  );
  assertEquals(
    publicReplicaUrl("s3://bkt/prod?endpoint=http://127.0.0.1:9000&region=x"),
    "s3://bkt/prod?endpoint=http://127.0.0.1:9000&region=x",
  );
  assertEquals(publicReplicaUrl("abs://acct@c/p?sas-token=abc"), "abs://acct@c/p");
  assertEquals(publicReplicaUrl("/backups/app"), "file:///backups/app");
  assertEquals(publicReplicaUrl("rel/dir"), new URL(`file://${Deno.cwd()}/rel/dir`).href);
});

Deno.test("clone refuses a source whose planned last file was renamed (its header says other TXIDs)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-branch-renamed-" });
  try {
    const source = await buildSource(join(dir, "source"));
    const bytes = await Deno.readFile(source.filePath(0, 5n, 5n));
    await source.writeFile(0, 5n, 6n, ReadableStream.from([bytes]), new Date(T0 + HOUR));
    await source.deleteFiles([{ level: 0, minTXID: 5n, maxTXID: 5n }]);
    const err = await assertRejects(() =>
      cloneReplica({
        source,
        sourceUrl: `file://${dir}/source`,
        dest: new FileReplicaClient(join(dir, "branch")),
        destUrl: `file://${dir}/branch`,
        target: { txid: 6n },
      })
    );
    assert(err instanceof LtxNameMismatchError, String(err));
    assert(err.message.includes(formatLtxFileName(5n, 6n)), err.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

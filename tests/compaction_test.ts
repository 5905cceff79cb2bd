/**
 * Compaction, snapshots, retention and the planner over a simulated day: an
 * injected clock drives thousands of L0 files into a real file replica while
 * levels and retention run at their wall-clock moments; restores to random
 * TXIDs and timestamps must equal the checksums recorded as the data was
 * written, with few files each.
 */

import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { decodeLtx, encodeLtx, formatLtxFileName, makeHeader } from "../src/ltx/mod.ts";
import { AgeReplicaClient } from "../src/storage/age_client.ts";
import { FileReplicaClient, type ReplicaFile, SNAPSHOT_LEVEL } from "../src/storage/mod.ts";
import type { ByteRange } from "../src/storage/client.ts";
import { ForwardingReplicaClient } from "../src/storage/forwarding_client.ts";
import {
  type CompactionSettings,
  Compactor,
  DEFAULT_COMPACTION,
  ReplicaIndex,
} from "../src/replicate/mod.ts";
import { listAllFiles, planRestore } from "../src/restore/plan.ts";
import { executeRestore } from "../src/restore/execute.ts";
import { restoreTarget } from "../src/restore/verified_restore.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { history } from "./helpers/history.ts";
import { modelChecksum, rng, textPage } from "./helpers/pages.ts";

const PAGE = 512;
const MIN = 60_000;
const HOUR = 60 * MIN;
const SETTINGS: CompactionSettings = {
  levelIntervalsMs: [30_000, 5 * MIN, HOUR],
  snapshotIntervalMs: 6 * HOUR,
  snapshotRetentionMs: 12 * HOUR,
  l0RetentionMs: 5 * MIN,
  l0RetentionCheckIntervalMs: 15_000,
  retentionEnabled: true,
};

/** The "database": pages, commit size, TXID; writes L0 files and snapshots as strata would. */
class SimDb {
  model = new Map<number, Uint8Array>();
  commit = 0;
  txid = 0n;
  sum = 0n;
  readonly history = new Map<bigint, { checksum: bigint; at: number }>();
  readonly #rand = rng(42);
  #seed = 1;

  async write(client: FileReplicaClient, at: number): Promise<ReplicaFile> {
    const pre = this.sum;
    const first = this.txid === 0n;
    const changed = new Map<number, Uint8Array>();
    if (first) {
      this.commit = 8;
      for (let p = 1; p <= this.commit; p++) changed.set(p, textPage(PAGE, this.#seed++));
    } else {
      const r = this.#rand();
      if (r < 0.05 && this.commit > 4) this.commit -= 1 + Math.floor(this.#rand() * 3); // shrink
      else if (r < 0.2) this.commit += 1 + Math.floor(this.#rand() * 2); // grow
      for (let p = this.model.size + 1; p <= this.commit; p++) {
        if (!this.model.has(p)) changed.set(p, textPage(PAGE, this.#seed++));
      }
      for (let k = 0; k < 2; k++) {
        changed.set(1 + Math.floor(this.#rand() * this.commit), textPage(PAGE, this.#seed++));
      }
    }
    for (const k of [...this.model.keys()]) if (k > this.commit) this.model.delete(k);
    for (const [p, d] of changed) if (p <= this.commit) this.model.set(p, d);
    this.txid++;
    this.sum = modelChecksum(this.model, this.commit, PAGE);
    this.history.set(this.txid, { checksum: this.sum, at });
    const pages = [...changed].filter(([p]) => p <= this.commit).sort((a, b) => a[0] - b[0]);
    const header = makeHeader({
      pageSize: PAGE,
      commit: this.commit,
      minTXID: first ? 1n : this.txid,
      maxTXID: this.txid,
      timestamp: BigInt(at),
      preApplyChecksum: first ? 0n : pre,
    });
    const bytes = await encodeLtx(header, pages.map(([pgno, data]) => ({ pgno, data })), this.sum);
    return await client.writeFile(
      0,
      header.minTXID,
      this.txid,
      ReadableStream.from([bytes]),
      new Date(at),
    );
  }

  async snapshot(client: FileReplicaClient, at: number): Promise<ReplicaFile> {
    const header = makeHeader({
      pageSize: PAGE,
      commit: this.commit,
      minTXID: 1n,
      maxTXID: this.txid,
      timestamp: BigInt(at),
    });
    const pages = [...this.model].sort((a, b) => a[0] - b[0]).map(([pgno, data]) => ({
      pgno,
      data,
    }));
    const bytes = await encodeLtx(header, pages, this.sum);
    return await client.writeFile(
      SNAPSHOT_LEVEL,
      1n,
      this.txid,
      ReadableStream.from([bytes]),
      new Date(at),
    );
  }
}

Deno.test("a simulated day: compaction levels, snapshots and retention keep every restore exact and short", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-day-" });
  try {
    const client = new FileReplicaClient(join(dir, "replica"));
    // reads of the replica's L1 files: none, since this compactor keeps its L1 outputs for L2
    const l1Reads = { n: 0 };
    const counting = new class extends ForwardingReplicaClient {
      override openFile(level: number, min: bigint, max: bigint, range?: ByteRange) {
        if (level === 1) l1Reads.n++;
        return super.openFile(level, min, max, range);
      }
    }(client);
    const index = new ReplicaIndex(counting);
    await index.load();
    const kept = join(dir, "kept");
    const compactor = new Compactor(index, SETTINGS, { keepDir: kept });
    const db = new SimDb();
    const start = Date.UTC(2026, 10, 1, 0, 0, 0);
    const step = 20_000; // one L0 file every 20 s: 4320 in a day
    const due = (t: number, every: number) => t % every === 0;
    let deleted = 0;
    let maxKept = 0;
    for (let t = start; t <= start + 24 * HOUR; t += step) {
      index.add(await db.write(client, t));
      if (t === start || due(t, SETTINGS.snapshotIntervalMs)) {
        index.add(await db.snapshot(client, t));
      }
      for (let level = 1; level <= SETTINGS.levelIntervalsMs.length; level++) {
        if (due(t, SETTINGS.levelIntervalsMs[level - 1])) await compactor.compact(level);
      }
      if (due(t, SETTINGS.levelIntervalsMs[0]) && t > start) {
        const n = [...Deno.readDirSync(join(kept, "1"))].length;
        maxKept = Math.max(maxKept, n);
      }
      if (due(t, 60_000)) deleted += (await compactor.enforceRetention(t)).length;
    }
    assert(db.txid > 4000n, `only ${db.txid} transactions`);
    assert(deleted > 3000, `retention deleted only ${deleted} files`);
    assertEquals(l1Reads.n, 0, "L2 read L1 files from the replica");
    // kept L1 files are pruned once L2 has them: never more than one L2 interval of them
    assert(maxKept >= 1 && maxKept <= 11, `up to ${maxKept} kept L1 files`);

    // the index kept in memory equals a fresh listing
    const listed = await listAllFiles(client);
    assertEquals(listed.length, index.all().length);
    const snaps = listed.filter((f) => f.level === SNAPSHOT_LEVEL);
    assertEquals(snaps.length, 3, "snapshots within 12 h retention: 12:00, 18:00, 24:00");
    const oldestKept = snaps[0].maxTXID;
    assert(
      listed.every((f) => f.level === SNAPSHOT_LEVEL || f.maxTXID > oldestKept || f.level === 0),
    );

    // restores to random TXIDs (any file's end) and timestamps inside the window
    const r = rng(7);
    const ends = [...new Set(listed.filter((f) => f.maxTXID >= oldestKept).map((f) => f.maxTXID))];
    for (let i = 0; i < 25; i++) {
      const txid = ends[Math.floor(r() * ends.length)];
      const plan = planRestore(listed, { txid }, client.location);
      const byLevel = new Map<number, number>();
      for (const f of plan.files) byLevel.set(f.level, (byLevel.get(f.level) ?? 0) + 1);
      assertEquals(plan.files.filter((f) => f.minTXID === 1n).length, 1);
      // between snapshots 6 h apart: ≤ 6 L3 files, ≤ 12 L2, ≤ 10 L1, ≤ 3 L0 (+ a little slack)
      for (const [level, max] of [[3, 6], [2, 12], [1, 10], [0, 3]]) {
        assert((byLevel.get(level) ?? 0) <= max, `level ${level}: ${byLevel.get(level)} files`);
      }
      const out = join(dir, `t${i}.db`);
      const res = await executeRestore(client, plan, out, { integrityCheck: "none" });
      assertEquals(res.txid, txid);
      assertEquals(res.checksum, db.history.get(txid)!.checksum, `TXID ${txid}`);
      await Deno.remove(out);
    }
    const windowStart = db.history.get(oldestKept)!.at;
    for (let i = 0; i < 15; i++) {
      const at = windowStart + Math.floor(r() * (start + 24 * HOUR - windowStart));
      const out = join(dir, `ts${i}.db`);
      const res = await restoreTarget(client, { timestamp: new Date(at) }, out, {
        integrityCheck: "none",
      });
      const rec = db.history.get(res.txid)!;
      assertEquals(res.checksum, rec.checksum);
      assert(rec.at <= at, "restored a state from after the timestamp");
      // nothing newer that is still reachable was skipped: the next TXID is after `at`
      // or is not the end of any file
      const next = listed.filter((f) => f.maxTXID > res.txid && f.createdAt.getTime() <= at);
      assertEquals(next.length, 0);
      await Deno.remove(out);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restore whose planned file is deleted by retention re-plans once and succeeds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-replan-" });
  try {
    const client = new FileReplicaClient(join(dir, "replica"));
    const index = new ReplicaIndex(client);
    await index.load();
    const compactor = new Compactor(index, SETTINGS);
    const db = new SimDb();
    const t0 = Date.UTC(2026, 10, 1);
    for (let i = 0; i < 12; i++) index.add(await db.write(client, t0 + i * 1000));
    const files = await listAllFiles(client);
    // L1 now covers everything; the L0 files the first plan chose disappear before reading
    await compactor.compact(1);
    await client.deleteFiles(files.filter((f) => f.level === 0 && f.minTXID > 1n));
    const out = join(dir, "r.db");
    const res = await restoreTarget(client, {}, out, { integrityCheck: "none", files });
    assertEquals(res.txid, db.txid);
    assertEquals(res.checksum, db.sum);
    assertEquals(res.files, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a compaction whose input fails its checks is refused and counted (litestream_compaction_verify_error_count)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-compact-verify-" });
  try {
    const client = new FileReplicaClient(dir);
    const { files } = await history(11, 512, 4);
    for (let i = 0; i < files.length; i++) {
      const t = BigInt(i + 1);
      const bytes = files[i].slice();
      if (i === 2) bytes[bytes.length - 30] ^= 0xff; // a flipped byte in TXID 3's index
      await client.writeFile(
        i === 0 ? 9 : 0,
        t,
        t,
        ReadableStream.from([bytes]),
        new Date(1000 * (i + 1)),
      );
    }
    const compactor = new Compactor(new ReplicaIndex(client), DEFAULT_COMPACTION);
    let err = "";
    await compactor.compact(1).catch((e) => (err = (e as Error).message));
    assertMatch(err, /0000000000000003-0000000000000003\.ltx/);
    assertEquals(compactor.verifyErrors, 1);
    assertEquals(await client.listFiles(1), [], "nothing written at L1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("under age, compaction goes past files stored without encryption (written before it was switched on), from the replica or local copies, and merges the encrypted ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-compact-age-" });
  try {
    const stored = new FileReplicaClient(dir);
    const identity = await generateIdentity();
    const age = new AgeReplicaClient(stored, {
      recipients: [await identityToRecipient(identity)],
      identities: [identity],
    });
    const { files, states } = await history(12, 512, 10);
    // TXIDs 1..5 as stored before `age:` (1 a snapshot), 6..10 written through it
    for (let i = 0; i < files.length; i++) {
      const t = BigInt(i + 1);
      await (i < 5 ? stored : age).writeFile(
        i === 0 ? 9 : 0,
        t,
        t,
        ReadableStream.from([files[i]]),
        new Date(1000 * (i + 1)),
      );
    }
    // the local copies of every L0 file are there too (as after a restart before any L1):
    // merging them must not carry the plaintext history into an encrypted file either
    const localL0Dir = join(dir, "local");
    await Deno.mkdir(localL0Dir);
    for (let i = 1; i < files.length; i++) {
      const t = BigInt(i + 1);
      await Deno.writeFile(join(localL0Dir, formatLtxFileName(t, t)), files[i]);
    }
    const index = new ReplicaIndex(age);
    const compactor = new Compactor(index, DEFAULT_COMPACTION, { localL0Dir });
    const l1 = await compactor.compact(1);
    assertEquals([l1?.minTXID, l1?.maxTXID], [6n, 10n], "only the encrypted files merged");
    assertEquals(index.unencryptedThrough, 5n);
    assertEquals(compactor.verifyErrors, 0);
    const raw = await new Response(await stored.openFile(1, 6n, 10n)).bytes();
    assertEquals(new TextDecoder().decode(raw.subarray(0, 21)), "age-encryption.org/v1");
    // the merged file decrypts to the chain's state at TXID 10
    const merged = await new Response(await age.openFile(1, 6n, 10n)).bytes();
    assertEquals((await decodeLtx(merged)).trailer.postApplyChecksum, states[9].checksum);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

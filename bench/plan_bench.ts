/**
 * Restore plan sizes after 24 simulated hours at 10 commits/s with the
 * default levels (30s, 5m, 1h), snapshots every 24h (one at the start), a
 * 1 s sync interval and default retention: the real compactor's choice of
 * inputs and retention, on file metadata only (no page data), then the real
 * planner for many random timestamps. Litestream v0.3 would need the
 * snapshot plus every WAL segment since it.
 */

import { Compactor, DEFAULT_COMPACTION, ReplicaIndex } from "../src/replicate/mod.ts";
import { planRestore } from "../src/restore/plan.ts";
import type { ReplicaClient, ReplicaFile } from "../src/storage/mod.ts";

/** A replica that holds nothing but what the index is told. */
const emptyReplica: ReplicaClient = {
  type: "memory",
  location: "(simulated)",
  listFiles: () => Promise.resolve([]),
  openFile: () => Promise.reject(new Error("metadata only")),
  writeFile: () => Promise.reject(new Error("metadata only")),
  deleteFiles: () => Promise.resolve(),
};

export async function simulateDay(): Promise<{ counts: number[]; files: number }> {
  const index = new ReplicaIndex(emptyReplica);
  await index.load();
  const settings = DEFAULT_COMPACTION;
  const compactor = new Compactor(index, settings);
  const start = Date.UTC(2026, 10, 1);
  const file = (level: number, min: bigint, max: bigint, at: number): ReplicaFile => ({
    level,
    minTXID: min,
    maxTXID: max,
    size: 0,
    createdAt: new Date(at),
  });
  index.add(file(9, 1n, 1n, start));
  let txid = 1n;
  const end = start + 24 * 3_600_000;
  for (let t = start + 1000; t <= end; t += 1000) {
    // one sync a second; strata's TXID is one per capture (10 a second at 100 ms)
    index.add(file(0, txid + 1n, txid + 10n, t));
    txid += 10n;
    settings.levelIntervalsMs.forEach((interval, i) => {
      if (t % interval !== 0) return;
      const inputs = compactor.inputsFor(i + 1);
      if (inputs.length === 0) return;
      index.add(file(i + 1, inputs[0].minTXID, inputs[inputs.length - 1].maxTXID, t));
    });
    if (t % settings.l0RetentionCheckIntervalMs === 0) index.remove(compactor.expired(t));
  }
  const all = index.all();
  const counts: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const at = start + 1000 + Math.floor(Math.random() * (end - start - 1000));
    counts.push(planRestore(all, { timestamp: new Date(at) }, "sim").files.length);
  }
  return { counts: counts.sort((a, b) => a - b), files: all.length };
}

if (import.meta.main) {
  const r = await simulateDay();
  const pct = (p: number) =>
    r.counts[Math.min(r.counts.length - 1, Math.floor(p * r.counts.length))];
  console.log(
    JSON.stringify({
      files: r.files,
      p50: pct(0.5),
      p90: pct(0.9),
      max: r.counts[r.counts.length - 1],
    }),
  );
}

/**
 * What one replica holds, per level, listed once and then kept up to date by
 * the only process writing to it. Compaction, retention and snapshots decide
 * from this view, so an idle database makes no listing requests.
 */

import { compareFiles, type ReplicaClient, type ReplicaFile } from "../storage/mod.ts";
import { ALL_LEVELS, planRestore } from "../restore/plan.ts";

export class ReplicaIndex {
  readonly client: ReplicaClient;
  #levels: Map<number, ReplicaFile[]> | null = null;

  constructor(client: ReplicaClient) {
    this.client = client;
  }

  /**
   * The newest TXID of files known to be stored without encryption under an
   * age-encrypted replica (0: none known): they are older history, never
   * merged into encrypted files (see Compactor.inputsFor).
   */
  unencryptedThrough = 0n;

  get loaded(): boolean {
    return this.#levels !== null;
  }

  /** Lists every level (again). */
  async load(): Promise<void> {
    const levels = new Map<number, ReplicaFile[]>();
    for (const level of ALL_LEVELS) levels.set(level, await this.client.listFiles(level));
    this.#levels = levels;
  }

  /** Forgets the listing; the next use lists again (after an error, say). */
  invalidate(): void {
    this.#levels = null;
  }

  async ensure(): Promise<void> {
    if (!this.#levels) await this.load();
  }

  /** Files of a level in TXID order (load first). */
  files(level: number): ReplicaFile[] {
    if (!this.#levels) throw new Error("replica index not loaded");
    return this.#levels.get(level) ?? [];
  }

  all(): ReplicaFile[] {
    return ALL_LEVELS.flatMap((l) => this.files(l));
  }

  last(level: number): ReplicaFile | null {
    const fs = this.files(level);
    return fs.length ? fs[fs.length - 1] : null;
  }

  /** The highest TXID any file reaches. */
  maxTXID(): bigint {
    let max = 0n;
    for (const f of this.all()) if (f.maxTXID > max) max = f.maxTXID;
    return max;
  }

  /**
   * Why the files listed cannot restore the newest TXID (the base of the
   * chain is gone, a gap), or null; an empty replica is fine.
   */
  restoreProblem(): string | null {
    const all = this.all();
    if (all.length === 0) return null;
    try {
      planRestore(all, { txid: this.maxTXID() }, this.client.location);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  add(f: ReplicaFile): void {
    if (!this.#levels) return;
    const list = (this.#levels.get(f.level) ?? []).filter((g) =>
      g.minTXID !== f.minTXID || g.maxTXID !== f.maxTXID
    );
    list.push(f);
    this.#levels.set(f.level, list.sort(compareFiles));
  }

  remove(gone: ReplicaFile[]): void {
    if (!this.#levels) return;
    for (const f of gone) {
      const list = this.#levels.get(f.level);
      if (!list) continue;
      this.#levels.set(
        f.level,
        list.filter((g) => g.minTXID !== f.minTXID || g.maxTXID !== f.maxTXID),
      );
    }
  }
}

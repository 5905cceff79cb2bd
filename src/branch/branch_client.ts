/**
 * A replica client that sees a branch whole: the branch's own files plus the
 * source files its manifest names (the base state). Reads of those go to the
 * source replica, writes go to the branch, and deletes of them are dropped: a
 * branch never deletes its source's files.
 *
 * The base files are listed at level 9 whatever their level in the source:
 * to the branch, its base is its first snapshot, stored as a chain. So its
 * own compaction (levels 1..8) only ever merges its own files, never reads
 * the source, and never takes a source L0 file together with the position
 * file a restore of the branch leaves locally at the base TXID (seed.ts).
 * The planner takes files of any level by TXID, so restores are unchanged.
 *
 * For a replica that is not a branch (no manifest at level 10) it passes
 * everything through, after one listing of level 10 on first use.
 */

import {
  type ByteRange,
  compareFiles,
  ForwardingReplicaClient,
  type ReplicaClient,
  type ReplicaFile,
  SNAPSHOT_LEVEL,
} from "../storage/mod.ts";
import { log } from "../log.ts";
import { type BranchManifest, readBranchManifest } from "./manifest.ts";
import { fileKey } from "./registry.ts";
import { verifyBranchBase } from "./base_check.ts";

export interface ResolvedBranch {
  manifest: BranchManifest;
  /** The manifest's files by their key as listed here (level 9), with their real level. */
  refs: Map<string, ReplicaFile>;
}

export class BranchReplicaClient extends ForwardingReplicaClient {
  readonly #sourceFor: (url: string) => ReplicaClient;
  #branch: Promise<ResolvedBranch | null> | null = null;
  #source: ReplicaClient | null = null;
  #verified: Promise<ReplicaClient> | null = null;

  /**
   * `sourceFor` builds the source's client from the manifest's URL (or
   * refuses a source the user did not allow); it runs only when a base file
   * is first read, never for listings.
   */
  constructor(inner: ReplicaClient, sourceFor: (url: string) => ReplicaClient) {
    super(inner);
    this.#sourceFor = sourceFor;
  }

  /** The branch this replica is, or null (looked up once). */
  branch(): Promise<ResolvedBranch | null> {
    this.#branch ??= readBranchManifest(this.inner).then((manifest) => {
      if (!manifest) return null;
      return {
        manifest,
        refs: new Map(
          manifest.files.map((f) => [fileKey({ ...f, level: SNAPSHOT_LEVEL }), f]),
        ),
      };
    }).catch((e) => {
      this.#branch = null; // try again next time
      throw e;
    });
    return this.#branch;
  }

  override async listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const own = await this.inner.listFiles(level, seek);
    if (level > SNAPSHOT_LEVEL) return own;
    if (level !== SNAPSHOT_LEVEL) return own;
    const b = await this.branch();
    if (!b) return own;
    const have = new Set(own.map(fileKey));
    const refs = [...b.refs.entries()]
      .filter(([key, f]) => f.minTXID >= seek && !have.has(key))
      .map(([, f]) => ({ ...f, level: SNAPSHOT_LEVEL }));
    return refs.length === 0 ? own : [...own, ...refs].sort(compareFiles);
  }

  override async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const b = level === SNAPSHOT_LEVEL ? await this.branch() : null;
    const ref = b?.refs.get(fileKey({ level, minTXID, maxTXID }));
    if (b && ref) {
      const source = await this.#verifiedSource(b);
      return await source.openFile(ref.level, minTXID, maxTXID, range);
    }
    return await this.inner.openFile(level, minTXID, maxTXID, range);
  }

  /** A base file's cached copy is the source client's to drop. */
  override async evictCached(f: ReplicaFile): Promise<boolean> {
    const b = f.level === SNAPSHOT_LEVEL ? await this.branch() : null;
    const ref = b?.refs.get(fileKey(f));
    if (b && ref) {
      // a source never opened served nothing
      return await this.#source?.evictCached?.({ ...f, level: ref.level }) ?? false;
    }
    return await this.inner.evictCached?.(f) ?? false;
  }

  /** The source's client, once the base it holds is the one the manifest pins (checked once). */
  #verifiedSource(b: ResolvedBranch): Promise<ReplicaClient> {
    this.#verified ??= (async () => {
      this.#source ??= this.#sourceFor(b.manifest.source);
      await verifyBranchBase(this.location, b.manifest, this.#source);
      return this.#source;
    })().catch((e) => {
      this.#verified = null; // a failure to reach the source is tried again next time
      throw e;
    });
    return this.#verified;
  }

  override async deleteFiles(
    files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[],
  ): Promise<void> {
    const b = await this.branch();
    const own = b ? files.filter((f) => !b.refs.has(fileKey(f))) : files;
    if (own.length < files.length) {
      log("debug", "branch keeps its source's files", {
        replica: this.location,
        skipped: files.length - own.length,
      });
    }
    if (own.length > 0) await this.inner.deleteFiles(own);
  }

  override async close(): Promise<void> {
    await super.close();
    await (this.#source as { close?: () => Promise<void> } | null)?.close?.();
  }
}

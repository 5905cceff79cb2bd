/**
 * A replica client that sees a branch whole: levels 0..9 list the branch's
 * own files plus the source files its manifest names (the base state), reads
 * of those go to the source replica, writes go to the branch. Deletes of
 * manifest files are dropped: a branch never deletes its source's files.
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

export interface ResolvedBranch {
  manifest: BranchManifest;
  source: ReplicaClient;
  /** Keys of the manifest's files. */
  refs: Set<string>;
}

export class BranchReplicaClient extends ForwardingReplicaClient {
  readonly #sourceFor: (url: string) => ReplicaClient;
  #branch: Promise<ResolvedBranch | null> | null = null;

  /** `sourceFor` builds the source's client from the manifest's URL. */
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
        source: this.#sourceFor(manifest.source),
        refs: new Set(manifest.files.map(fileKey)),
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
    const b = await this.branch();
    if (!b) return own;
    const have = new Set(own.map(fileKey));
    const refs = b.manifest.files.filter((f) =>
      f.level === level && f.minTXID >= seek && !have.has(fileKey(f))
    );
    return refs.length === 0 ? own : [...own, ...refs].sort(compareFiles);
  }

  override async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const b = level <= SNAPSHOT_LEVEL ? await this.branch() : null;
    if (b && b.refs.has(fileKey({ level, minTXID, maxTXID }))) {
      return await b.source.openFile(level, minTXID, maxTXID, range);
    }
    return await this.inner.openFile(level, minTXID, maxTXID, range);
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
    const b = await this.#branch?.catch(() => null);
    await super.close();
    await (b?.source as { close?: () => Promise<void> } | undefined)?.close?.();
  }
}

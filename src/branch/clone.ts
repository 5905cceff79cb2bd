/**
 * `clone`: a branch of a replica at a past point, made of two small JSON
 * writes (the branch's manifest and the source's registration) and a few
 * byte-range reads of the source. No page data is copied: a restore of the
 * branch reads the source's files the manifest names, then the branch's own.
 */

import {
  decodeHeader,
  decodeTrailer,
  formatTXID,
  hasChecksums,
  HEADER_SIZE,
  headerRangeProblem,
  LtxNameMismatchError,
  TRAILER_SIZE,
} from "../ltx/mod.ts";
import { type ReplicaClient, type ReplicaFile, replicaFileLabel } from "../storage/mod.ts";
import { ALL_LEVELS, listAllFiles, planRestore, type RestoreTarget } from "../restore/mod.ts";
import { log } from "../log.ts";
import {
  BRANCH_MANIFEST_LEVEL,
  BranchError,
  type BranchManifest,
  manifestFile,
  readBranchManifest,
  writeManifest,
} from "./manifest.ts";
import { fileKey, registerBranch, unregisterBranch } from "./registry.ts";
import { readRange } from "./base_check.ts";

export interface CloneOptions {
  source: ReplicaClient;
  /** The source's URL as stored in the manifest (see `publicReplicaUrl`). */
  sourceUrl: string;
  dest: ReplicaClient;
  destUrl: string;
  target: RestoreTarget;
  clock?: () => number;
}

export interface CloneResult {
  manifest: BranchManifest;
  /** Bytes written (both manifests). */
  uploaded: number;
  /** Bytes read from the source's files (headers and trailers only). */
  downloaded: number;
}

/** Levels 0..10 of `client` hold nothing. */
async function isEmpty(client: ReplicaClient): Promise<number | null> {
  for (const level of [...ALL_LEVELS, BRANCH_MANIFEST_LEVEL]) {
    if ((await client.listFiles(level)).length > 0) return level;
  }
  return null;
}

function randomId(): bigint {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  return b[0] | 0x8000000000000000n;
}

/** Creates the branch; see the module comment. */
export async function cloneReplica(opts: CloneOptions): Promise<CloneResult> {
  const { source, dest } = opts;
  const clock = opts.clock ?? Date.now;
  if (await readBranchManifest(source)) {
    throw new BranchError(
      `source ${source.location} is itself a branch; clone its source instead (branches of branches are not supported)`,
    );
  }
  const used = await isEmpty(dest);
  if (used !== null) {
    throw new BranchError(
      `destination ${dest.location} already holds files (level ${used}); a branch needs an empty location`,
    );
  }
  let downloaded = 0;
  for (let attempt = 1;; attempt++) {
    const plan = planRestore(await listAllFiles(source), opts.target, source.location);
    const last = plan.files[plan.files.length - 1];
    const header = decodeHeader(
      await readRange(source, last, 0, HEADER_SIZE),
      `${source.location} L${last.level}`,
    );
    const mismatch = headerRangeProblem(header, last);
    if (mismatch) throw new LtxNameMismatchError(replicaFileLabel(source.location, last), mismatch);
    if (!hasChecksums(header)) {
      throw new BranchError(
        `source ${source.location}: the file ending at TXID ${
          formatTXID(last.maxTXID)
        } carries no checksums; a branch needs one to chain from`,
      );
    }
    const trailer = decodeTrailer(
      await readRange(source, last, last.size - TRAILER_SIZE, TRAILER_SIZE),
    );
    downloaded += HEADER_SIZE + TRAILER_SIZE;
    const manifest: BranchManifest = {
      id: randomId(),
      source: opts.sourceUrl,
      dest: opts.destUrl,
      base: {
        txid: plan.txid,
        // a file in Litestream's form keeps its post-apply checksum in the header
        checksum: header.kept?.post ?? trailer.postApplyChecksum,
        pageSize: header.pageSize,
        time: last.createdAt,
      },
      files: plan.files,
      createdAt: new Date(clock()),
    };
    // register first: from here on the source's retention keeps these files
    let uploaded = await registerBranch(source, manifest);
    uploaded += await writeManifest(dest, BRANCH_MANIFEST_LEVEL, manifest);
    // retention may have deleted a planned file between our listing and the registration
    const missing = await missingFiles(source, plan.files);
    if (missing.length === 0) return { manifest, uploaded, downloaded };
    await dest.deleteFiles([manifestFile(BRANCH_MANIFEST_LEVEL, manifest)]);
    await unregisterBranch(source, manifest);
    if (attempt >= 3) {
      throw new BranchError(
        `source ${source.location}: files of the plan keep disappearing (${missing.join(", ")})`,
      );
    }
    log("warn", "planned source files vanished during clone; planning again", {
      source: source.location,
      missing: missing.join(","),
    });
  }
}

async function missingFiles(client: ReplicaClient, files: ReplicaFile[]): Promise<string[]> {
  const levels = [...new Set(files.map((f) => f.level))];
  const present = new Set<string>();
  for (const level of levels) {
    const from = files.filter((f) => f.level === level)
      .reduce((m, f) => (f.minTXID < m ? f.minTXID : m), files[files.length - 1].maxTXID);
    for (const f of await client.listFiles(level, from)) present.add(fileKey(f));
  }
  return files.filter((f) => !present.has(fileKey(f))).map(fileKey);
}

/**
 * Deletes a branch: its own files, its manifest, then its registration in
 * the source (which releases the source files it pinned).
 */
export async function deleteBranch(
  dest: ReplicaClient,
  sourceFor: (url: string) => ReplicaClient,
): Promise<{ manifest: BranchManifest; deleted: number }> {
  const manifest = await readBranchManifest(dest);
  if (!manifest) throw new BranchError(`replica ${dest.location} is not a branch (no manifest)`);
  const source = sourceFor(manifest.source);
  await source.listFiles(BRANCH_MANIFEST_LEVEL); // reachable before anything is deleted
  let deleted = 0;
  for (const level of ALL_LEVELS) {
    const own = await dest.listFiles(level);
    if (own.length > 0) await dest.deleteFiles(own);
    deleted += own.length;
  }
  await dest.deleteFiles([manifestFile(BRANCH_MANIFEST_LEVEL, manifest)]);
  await unregisterBranch(source, manifest);
  return { manifest, deleted };
}

/**
 * The source side of branches: the registry of branches made from a replica
 * (level 11 of the source), and the files they pin. Source retention skips
 * every pinned file, so a live branch always finds its base files; deleting
 * the branch (`strata clone -delete`) releases them.
 */

import type { ReplicaClient, ReplicaFile } from "../storage/mod.ts";
import {
  BRANCH_REGISTRY_LEVEL,
  type BranchManifest,
  manifestFile,
  readManifestFile,
  writeManifest,
} from "./manifest.ts";

/** `level/min-max`, the identity of a replica file. */
export function fileKey(f: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">): string {
  return `${f.level}/${f.minTXID}-${f.maxTXID}`;
}

/** Registrations never change once written: read each one once per process. */
const seen = new Map<string, BranchManifest>();

/** The branches registered in `source`, oldest first. */
export async function listBranches(source: ReplicaClient): Promise<BranchManifest[]> {
  const out: BranchManifest[] = [];
  for (const f of await source.listFiles(BRANCH_REGISTRY_LEVEL)) {
    const key = `${source.location}|${fileKey(f)}`;
    let m = seen.get(key);
    if (!m) {
      m = await readManifestFile(source, f);
      seen.set(key, m);
    }
    out.push(m);
  }
  return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

/** Keys (see `fileKey`) of the source files some live branch needs. */
export async function pinnedFiles(source: ReplicaClient): Promise<Set<string>> {
  const pins = new Set<string>();
  for (const m of await listBranches(source)) for (const f of m.files) pins.add(fileKey(f));
  return pins;
}

export async function registerBranch(source: ReplicaClient, m: BranchManifest): Promise<number> {
  const n = await writeManifest(source, BRANCH_REGISTRY_LEVEL, m);
  seen.set(`${source.location}|${fileKey(manifestFile(BRANCH_REGISTRY_LEVEL, m))}`, m);
  return n;
}

export async function unregisterBranch(source: ReplicaClient, m: BranchManifest): Promise<void> {
  const f = manifestFile(BRANCH_REGISTRY_LEVEL, m);
  await source.deleteFiles([f]);
  seen.delete(`${source.location}|${fileKey(f)}`);
}

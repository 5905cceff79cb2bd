/**
 * A replica written in Litestream's form (`format: litestream`): every LTX
 * file uploaded (L0, compacted levels, snapshots) is re-encoded so that
 * released Litestream v0.5 restores it, with strata's checksums kept in the
 * header (see ltx/litestream_form.ts). Reads pass through: strata reads both
 * forms. Other files (branch manifests, levels above 9) pass through too.
 *
 * Each upload is staged in one temporary file (the file as given: its
 * post-apply checksum, at its end, goes into the new form's header); the new
 * form streams from it into the upload, and a file that fails its checks
 * errors the upload, so it is never stored. The staging costs one local
 * write and read of each file, in $TMPDIR.
 */

import { readLocalEnds } from "../ltx/local_ends.ts";
import { writeLitestreamForm } from "../ltx/litestream_form.ts";
import { ForwardingReplicaClient } from "./forwarding_client.ts";
import { type ReplicaFile, replicaFileLabel, SNAPSHOT_LEVEL, uploadOfMerge } from "./client.ts";

export class LitestreamFormClient extends ForwardingReplicaClient {
  override async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    if (level < 0 || level > SNAPSHOT_LEVEL) {
      return await this.inner.writeFile(level, minTXID, maxTXID, data, createdAt);
    }
    const label = replicaFileLabel(this.location, { level, minTXID, maxTXID });
    const given = await Deno.makeTempFile({ prefix: "strata-given-", suffix: ".ltx" });
    try {
      const g = await Deno.open(given, { write: true, truncate: true });
      try {
        await data.pipeTo(g.writable);
      } catch (e) {
        try {
          g.close();
        } catch { /* closed by the pipe */ }
        throw e;
      }
      // its post-apply checksum: the trailer's, or the one its header keeps
      const ends = await readLocalEnds(given);
      const post = ends.header.kept?.post ?? ends.post;
      const src = await Deno.open(given);
      // the new form streams into the upload; a failed check errors it (nothing is stored)
      const pipe = new TransformStream<Uint8Array, Uint8Array>();
      const w = pipe.writable.getWriter();
      const encoded = (async () => {
        try {
          await writeLitestreamForm(src.readable, { write: (c) => w.write(c) }, post, label);
          await w.close();
        } catch (e) {
          await w.abort(e).catch(() => {});
          throw e;
        } finally {
          try {
            src.close();
          } catch { /* closed by its stream */ }
        }
      })();
      return await uploadOfMerge(
        this.inner.writeFile(level, minTXID, maxTXID, pipe.readable, createdAt),
        encoded,
      );
    } finally {
      await Deno.remove(given).catch(() => {});
    }
  }
}

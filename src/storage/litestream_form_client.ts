/**
 * A replica written in Litestream's form (`format: litestream`): every LTX
 * file uploaded (L0, compacted levels, snapshots) is re-encoded so that
 * released Litestream v0.5 restores it, with strata's checksums kept in the
 * header (see ltx/litestream_form.ts). Reads pass through: strata reads both
 * forms. Other files (branch manifests, levels above 9) pass through too.
 *
 * Each upload is staged in two temporary files (the file as given, to read
 * its post-apply checksum first; then its new form), so a file that fails
 * its checks is never uploaded; the staging costs one local write and read
 * of each file, in $TMPDIR.
 */

import { readLocalEnds } from "../ltx/local_ends.ts";
import { writeLitestreamForm } from "../ltx/litestream_form.ts";
import { writerSink } from "../ltx/io.ts";
import { ForwardingReplicaClient } from "./forwarding_client.ts";
import { type ReplicaFile, replicaFileLabel, SNAPSHOT_LEVEL } from "./client.ts";

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
    const form = await Deno.makeTempFile({ prefix: "strata-litestream-", suffix: ".ltx" });
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
      const out = await Deno.open(form, { write: true, truncate: true });
      try {
        await writeLitestreamForm(src.readable, writerSink(out), post, label);
      } finally {
        try {
          src.close();
        } catch { /* closed by its stream */ }
        out.close();
      }
      const upload = await Deno.open(form);
      try {
        return await this.inner.writeFile(level, minTXID, maxTXID, upload.readable, createdAt);
      } finally {
        try {
          upload.close();
        } catch { /* closed by its stream */ }
      }
    } finally {
      await Deno.remove(given).catch(() => {});
      await Deno.remove(form).catch(() => {});
    }
  }
}

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

import { decodeHeader, decodeTrailer, HEADER_SIZE, TRAILER_SIZE } from "../ltx/header.ts";
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
      const post = await trailerPost(given, label);
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

/** The post-apply checksum of the LTX file at `path`: its trailer's, or the one its header keeps. */
async function trailerPost(path: string, label: string): Promise<bigint> {
  const f = await Deno.open(path);
  try {
    const size = (await f.stat()).size;
    if (size < HEADER_SIZE + TRAILER_SIZE) {
      throw new Error(`${label}: ${size} bytes is no LTX file`);
    }
    const read = async (at: number, n: number) => {
      const buf = new Uint8Array(n);
      await f.seek(at, Deno.SeekMode.Start);
      for (let got = 0; got < n;) {
        const r = await f.read(buf.subarray(got));
        if (r === null) throw new Error(`${label}: short read`);
        got += r;
      }
      return buf;
    };
    const header = decodeHeader(await read(0, HEADER_SIZE), label);
    return header.kept?.post ?? decodeTrailer(await read(size - TRAILER_SIZE, TRAILER_SIZE))
      .postApplyChecksum;
  } finally {
    f.close();
  }
}

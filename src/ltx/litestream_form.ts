/**
 * Litestream's form of an LTX file: what every released Litestream v0.5
 * (v0.5.0 to v0.5.16) restores. Litestream writes all its files with the
 * NoChecksum flag and zero pre- and post-apply checksums, and v0.5.0–v0.5.15
 * read only pages with flags 0 followed by one LZ4 frame (v0.5.16 reads those
 * too, and fails on files that carry checksums: its restore compactor forces
 * NoChecksum and then refuses a non-zero post-apply checksum). So a file in
 * Litestream's form is strata's file with:
 *
 * - the NoChecksum flag set, zero in the pre-apply field and the trailer's
 *   post-apply field;
 * - every page as `pgno`, flags 0, one LZ4 frame (64 KiB blocks, content
 *   checksum), the way pierrec/lz4 writes it;
 * - strata's pre- and post-apply checksums kept in the header's reserved
 *   bytes 80..99 ("STRC", pre, post), which Litestream neither reads nor
 *   checks (its file checksum covers them, as it covers the whole header).
 *
 * strata's decoder reads such a file as the checksummed file it was made
 * from, so restores, verification, divergence checks and compaction keep
 * every check; Litestream restores it as one of its own.
 */

import { LtxDecoder } from "./decoder.ts";
import { type EncodedFile, LtxEncoder } from "./encoder.ts";
import { formatChecksum } from "./checksum.ts";
import { LtxEncodeError } from "./errors.ts";
import type { ByteSink, ByteSource } from "./io.ts";

/**
 * Re-encodes the LTX file `src` (strata's form, or Litestream's) into
 * Litestream's form on `sink`, verifying every byte of `src` on the way.
 * `post` is its post-apply checksum (0 for a file without checksums), which
 * the header must hold before its pages are read; a file ending elsewhere is
 * refused.
 */
export async function writeLitestreamForm(
  src: ByteSource,
  sink: ByteSink,
  post: bigint,
  file: string,
): Promise<EncodedFile> {
  const dec = new LtxDecoder(src, { file });
  try {
    const { kept: _, ...header } = await dec.readHeader();
    const enc = new LtxEncoder(sink, header, { file, litestream: { post } });
    const page = new Uint8Array(header.pageSize);
    for (let p = await dec.nextPage(page); p; p = await dec.nextPage(page)) {
      await enc.writePage(p.pgno, p.data);
    }
    const got = dec.trailer!.postApplyChecksum;
    if (got !== post) {
      throw new LtxEncodeError(
        file,
        `ends at checksum ${formatChecksum(got)}, not ${formatChecksum(post)} as expected`,
      );
    }
    return await enc.finish(post === 0n ? undefined : post);
  } catch (e) {
    await dec.cancel().catch(() => {});
    throw e;
  }
}

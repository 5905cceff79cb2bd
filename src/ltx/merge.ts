/**
 * Streaming merge (compaction) of contiguous LTX files into one
 * (spec/ltx.md "Merging"). A k-way merge by page number holds one page per
 * input at a time. A page version survives only when no file after it shrank
 * the database below that page, so shrink-then-grow histories merge correctly.
 */

import { LtxDecoder, type LtxPage } from "./decoder.ts";
import { type EncodedFile, LtxEncoder } from "./encoder.ts";
import { LtxFormatError } from "./errors.ts";
import {
  FLAG_NO_CHECKSUM,
  hasChecksums,
  isSnapshot,
  type LtxHeader,
  makeHeader,
} from "./header.ts";
import type { ByteSink, ByteSource } from "./io.ts";
import { formatChecksum } from "./checksum.ts";
import type { TXIDRange } from "./names.ts";

export interface MergeInput {
  /** Name used in errors. */
  name: string;
  source: ByteSource;
  /** The TXIDs the input's name says it covers (its header must agree). */
  expect?: TXIDRange;
}

export interface MergeResult extends EncodedFile {
  header: LtxHeader;
}

/** Error for inputs that cannot be merged (gaps, broken chains, mixed page sizes). */
export class LtxMergeError extends Error {
  constructor(reason: string) {
    super(`cannot merge LTX files: ${reason}`);
    this.name = "LtxMergeError";
  }
}

/**
 * Merges `inputs` (in TXID order) into `sink`. Every input is fully verified
 * while it is read; any error aborts the merge (the caller discards the
 * partial output).
 */
export async function mergeLtx(
  inputs: MergeInput[],
  sink: ByteSink,
  opts: { file?: string; timestamp?: bigint } = {},
): Promise<MergeResult> {
  if (inputs.length === 0) throw new LtxMergeError("no input files");
  const decoders = inputs.map((i) => new LtxDecoder(i.source, { file: i.name, expect: i.expect }));
  try {
    const headers: LtxHeader[] = [];
    for (const d of decoders) headers.push(await d.readHeader());
    checkChain(inputs, headers);
    const first = headers[0];
    const last = headers[headers.length - 1];
    const checksums = headers.every(hasChecksums);
    // suffixMin[i]: the smallest commit among files i..n-1; page p of file i
    // survives only if p <= suffixMin[i].
    const suffixMin = new Array<number>(headers.length);
    let m = Infinity;
    for (let i = headers.length - 1; i >= 0; i--) {
      m = Math.min(m, headers[i].commit);
      suffixMin[i] = m;
    }
    const header = makeHeader({
      flags: checksums ? 0 : FLAG_NO_CHECKSUM,
      pageSize: first.pageSize,
      commit: last.commit,
      minTXID: first.minTXID,
      maxTXID: last.maxTXID,
      timestamp: opts.timestamp ?? last.timestamp,
      preApplyChecksum: checksums && !isSnapshot(first) ? first.preApplyChecksum : 0n,
    });
    const enc = new LtxEncoder(sink, header, { file: opts.file });
    const heads: (LtxPage | null)[] = [];
    for (const d of decoders) heads.push(await d.nextPage());
    while (true) {
      let min = Infinity;
      for (const h of heads) if (h && h.pgno < min) min = h.pgno;
      if (min === Infinity) break;
      let winner = -1;
      for (let i = 0; i < heads.length; i++) {
        if (heads[i]?.pgno === min) winner = i;
      }
      if (min <= suffixMin[winner]) await enc.writePage(min, heads[winner]!.data);
      for (let i = 0; i < heads.length; i++) {
        if (heads[i]?.pgno === min) heads[i] = await decoders[i].nextPage();
      }
    }
    // every input is verified now (nextPage returned null for each)
    checkChecksumChain(inputs.map((input, i) => ({
      name: input.name,
      header: headers[i],
      postApplyChecksum: decoders[i].trailer!.postApplyChecksum,
    })));
    const post = decoders[decoders.length - 1].trailer!.postApplyChecksum;
    const result = await enc.finish(checksums ? post : undefined);
    if (checksums && result.postApplyChecksum !== post) {
      throw new LtxMergeError(
        `merged snapshot checksum ${formatChecksum(result.postApplyChecksum)} differs from ${
          inputs[inputs.length - 1].name
        }'s post-apply ${formatChecksum(post)}`,
      );
    }
    return { ...result, header };
  } catch (e) {
    await Promise.allSettled(decoders.map((d) => d.cancel()));
    throw e;
  }
}

function checkChain(inputs: MergeInput[], headers: LtxHeader[]): void {
  for (let i = 1; i < headers.length; i++) {
    const a = headers[i - 1];
    const b = headers[i];
    if (b.pageSize !== a.pageSize) {
      throw new LtxMergeError(
        `${inputs[i].name} has page size ${b.pageSize}, ${inputs[i - 1].name} ${a.pageSize}`,
      );
    }
    if (isSnapshot(b)) {
      throw new LtxMergeError(`${inputs[i].name} is a snapshot; only the first input may be one`);
    }
    if (b.minTXID !== a.maxTXID + 1n) {
      throw new LtxMergeError(
        `${inputs[i].name} (TXID ${b.minTXID}) does not continue ${
          inputs[i - 1].name
        } (TXID ${a.maxTXID})`,
      );
    }
  }
}

/** Checks the pre/post chain once trailers are known (decoders verified). */
export function checkChecksumChain(
  files: { name: string; header: LtxHeader; postApplyChecksum: bigint }[],
): void {
  for (let i = 1; i < files.length; i++) {
    const a = files[i - 1];
    const b = files[i];
    if (!hasChecksums(a.header) || !hasChecksums(b.header)) continue;
    if (b.header.preApplyChecksum !== a.postApplyChecksum) {
      throw new LtxFormatError(
        b.name,
        `pre-apply checksum ${
          formatChecksum(b.header.preApplyChecksum)
        } does not continue ${a.name}'s post-apply ${formatChecksum(a.postApplyChecksum)}`,
      );
    }
  }
}

/**
 * `mergeLtx` as a web stream of the merged bytes, for uploads: memory stays
 * bounded by the stream's backpressure. `result` settles when the merge ends;
 * a failed merge errors the stream, so a consumer never sees a complete file.
 */
export function mergeLtxStream(
  inputs: MergeInput[],
  opts: { file?: string; timestamp?: bigint } = {},
): { stream: ReadableStream<Uint8Array>; result: Promise<MergeResult> } {
  const pipe = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 8 });
  const writer = pipe.writable.getWriter();
  const result = mergeLtx(inputs, { write: (chunk) => writer.write(chunk) }, opts).then(
    async (r) => {
      await writer.close();
      return r;
    },
    async (e) => {
      await writer.abort(e).catch(() => {});
      throw e;
    },
  );
  result.catch(() => {}); // the caller awaits it; never an unhandled rejection meanwhile
  return { stream: pipe.readable, result };
}

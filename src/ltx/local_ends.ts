/** Reading a local LTX file's two ends without reading its pages. */

import {
  decodeHeader,
  decodeTrailer,
  HEADER_SIZE,
  type LtxHeader,
  TRAILER_SIZE,
} from "./header.ts";

/** The header and post-apply checksum of a local LTX file (two small reads). */
export async function readLocalEnds(path: string): Promise<{ header: LtxHeader; post: bigint }> {
  const file = await Deno.open(path);
  try {
    const size = (await file.stat()).size;
    const head = await readFully(file, 0, HEADER_SIZE);
    const tail = await readFully(file, size - TRAILER_SIZE, TRAILER_SIZE);
    if (head.length < HEADER_SIZE || tail.length < TRAILER_SIZE || size < HEADER_SIZE + 16) {
      throw new Error(`local LTX file ${path} is truncated (${size} bytes)`);
    }
    return { header: decodeHeader(head, path), post: decodeTrailer(tail).postApplyChecksum };
  } finally {
    file.close();
  }
}

async function readFully(file: Deno.FsFile, offset: number, n: number): Promise<Uint8Array> {
  if (offset < 0) return new Uint8Array(0);
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return buf.subarray(0, got);
}

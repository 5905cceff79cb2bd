/** The LTX format: what other folders may use. */

export * from "./checksum.ts";
export * from "./crc64.ts";
export * from "./decoder.ts";
export * from "./encoder.ts";
export * from "./errors.ts";
export * from "./header.ts";
export * from "./io.ts";
export * from "./local_ends.ts";
export * from "./merge.ts";
export * from "./names.ts";
export * from "./page_index.ts";
export { lz4CompressBlock, lz4CompressBound, lz4DecompressBlock } from "./lz4.ts";
export { lz4FrameChunks } from "./lz4_stream.ts";

/** Errors raised by the LTX format library. Each names the file and the reason. */

/** A malformed LZ4 block or frame (wrapped into `LtxFormatError` by the decoder). */
export class LZ4Error extends Error {
  constructor(reason: string) {
    super(`lz4: ${reason}`);
    this.name = "LZ4Error";
  }
}

/** A file that breaks a rule of the LTX format. */
export class LtxFormatError extends Error {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string) {
    super(`invalid LTX file ${file}: ${reason}`);
    this.name = "LtxFormatError";
    this.file = file;
    this.reason = reason;
  }
}

/** A checksum (file or database) that does not match the content. */
export class LtxChecksumError extends LtxFormatError {
  constructor(file: string, reason: string) {
    super(file, reason);
    this.name = "LtxChecksumError";
  }
}

/** A file whose header covers other TXIDs than its name (or the restore plan) says. */
export class LtxNameMismatchError extends LtxFormatError {
  constructor(file: string, reason: string) {
    super(file, reason);
    this.name = "LtxNameMismatchError";
  }
}

/** An older LTX generation strata recognises but does not read. */
export class LtxUnsupportedLayoutError extends LtxFormatError {
  constructor(file: string, reason: string) {
    super(file, `unsupported LTX layout: ${reason}`);
    this.name = "LtxUnsupportedLayoutError";
  }
}

/** A caller tried to write something the format forbids. */
export class LtxEncodeError extends Error {
  constructor(file: string, reason: string) {
    super(`cannot encode LTX file ${file}: ${reason}`);
    this.name = "LtxEncodeError";
  }
}

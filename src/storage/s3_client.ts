/**
 * The `s3` replica client (AWS S3 and S3-compatible stores), with Litestream
 * v0.5's S3 layout: `<path>/<level as %04x>/<min>-<max>.ltx`, each object
 * carrying its creation time as metadata `litestream-timestamp` (RFC 3339 with
 * nanoseconds).
 *
 * The AWS SDK is loaded on first use, so file-only users never pay for it.
 * Retries (exponential backoff with full jitter) cover 5xx, throttling
 * (SlowDown, 429), timeouts and connection failures; reads that break midway
 * resume with a ranged GET pinned to the object's ETag. Objects become visible
 * only whole: a single PUT below the part size, a multipart upload (completed
 * atomically, aborted on failure) above it.
 */

import type { S3Encryption } from "../config/s3_config.ts";
import type { _Object, GetObjectCommandOutput, S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { formatLtxFileName, formatTXID, parseLtxFileName } from "../ltx/names.ts";
import {
  type ByteRange,
  compareFiles,
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "./client.ts";
import { log } from "../log.ts";
import { parseRFC3339 } from "../rfc3339.ts";
import { forEachLimited, formatRFC3339Nano, joinKey } from "./remote_util.ts";
import type { RawEntry } from "./litestream_v03.ts";

export { formatRFC3339Nano };

/** Litestream's metadata key for an object's creation time. */
export const METADATA_TIMESTAMP = "litestream-timestamp";
/** DeleteObjects takes at most this many keys. */
export const MAX_DELETE_KEYS = 1000;
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const DEFAULT_PART_SIZE = MIN_PART_SIZE;
export const DEFAULT_CONCURRENCY = 5;
export const DEFAULT_REGION = "us-east-1";

export interface S3ClientOptions {
  bucket: string;
  /** Key prefix without leading or trailing slash ("" for the bucket root). */
  path: string;
  region?: string;
  /** `http(s)://host[:port]` of an S3-compatible store; none for AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  skipVerify?: boolean;
  storageClass?: string;
  /** Multipart part size in bytes (≥ 5 MiB); also the single-PUT threshold and download chunk. */
  partSize?: number;
  /** Parallel parts per upload and parallel ranged GETs per download. */
  concurrency?: number;
  /** Send Content-MD5 with DeleteObjects (some stores require it). Default true. */
  requireContentMD5?: boolean;
  /** Server-side encryption (SSE-C headers on every write and read; SSE-KMS on writes). */
  sse?: S3Encryption;
  /** Attempts per request, the first included. Default 10. */
  maxAttempts?: number;
  /** First retry delay ceiling in ms (doubles per attempt). Default 200. */
  retryBaseMs?: number;
  /** Retry delay ceiling in ms. Default 20 000. */
  retryMaxMs?: number;
  /** A request taking longer, or a body read idle this long, is abandoned and retried. Default 120 000. */
  requestTimeoutMs?: number;
  /** Parallel HeadObject calls when reading creation times. Default 32. */
  metadataConcurrency?: number;
  /** Environment lookup for credentials (tests). */
  env?: (name: string) => string | undefined;
}

/** Options for `listFiles` (beyond the ReplicaClient interface's). */
export interface S3ListOptions {
  /**
   * Read each object's `litestream-timestamp` (a HeadObject per object not yet
   * known to this client) so `createdAt` is exact. Default true; with false,
   * `createdAt` is the object's LastModified (upload time, later than creation).
   */
  metadata?: boolean;
}

/** A request S3 refused in a way retrying will not fix, or that kept failing. */
export class S3RequestError extends Error {
  readonly operation: string;
  readonly bucket: string;
  readonly key: string | undefined;
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(
    operation: string,
    bucket: string,
    key: string | undefined,
    status: number | undefined,
    code: string | undefined,
    detail: string,
    cause?: unknown,
  ) {
    const where = `s3://${bucket}${key !== undefined ? `/${key}` : ""}`;
    const st = status !== undefined ? ` HTTP ${status}` : "";
    super(`s3 ${operation} ${where}:${st}${code ? ` ${code}` : ""}: ${detail}`, { cause });
    this.name = "S3RequestError";
    this.operation = operation;
    this.bucket = bucket;
    this.key = key;
    this.status = status;
    this.code = code;
  }
}

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $retryable?: unknown;
  cause?: unknown;
}

function statusOf(e: unknown): number | undefined {
  return (e as SdkError | null)?.$metadata?.httpStatusCode;
}

function codeOf(e: unknown): string | undefined {
  const x = e as SdkError | null;
  return x?.Code ?? x?.name ?? x?.code;
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
]);
const RETRYABLE_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "RequestTimeout",
  "RequestTimeoutException",
  "RequestCanceled",
  "TimeoutError",
  "InternalError",
  "ServiceUnavailable",
  "BandwidthLimitExceeded",
  "RequestLimitExceeded",
]);
const PERMANENT_NAMES = new Set([
  "CredentialsProviderError",
  "AbortError",
  "NoSuchBucket",
  "NoSuchKey",
  "NotFound",
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
]);

/** True for failures another attempt may fix: 5xx, throttling, timeouts, broken connections. */
export function isRetryable(e: unknown, depth = 0): boolean {
  if (!e || typeof e !== "object" || depth > 5) return false;
  const x = e as SdkError;
  const status = statusOf(e);
  if (x.name && PERMANENT_NAMES.has(x.name)) return false;
  if (status !== undefined) {
    if (status >= 500 || status === 429 || status === 408) return true;
    // a 2xx whose body broke while being read or parsed
    if (status >= 200 && status < 300) return true;
    if (RETRYABLE_CODES.has(codeOf(e) ?? "")) return true;
    return false;
  }
  if (RETRYABLE_CODES.has(x.name ?? "") || NETWORK_CODES.has(x.code ?? "")) return true;
  if (x.$retryable) return true;
  // no HTTP response at all: the connection failed somewhere
  if (
    x.name === "TypeError" || x.name === "Error" || x.name === "Interrupted" ||
    x.name === "ConnectionReset" || x.name === "BrokenPipe" || x.name === "UnexpectedEof" ||
    x.name === "TimedOut" || x.name === "ConnectionRefused"
  ) {
    if (
      /socket|connect|network|reset|hang up|closed|timed? ?out|EOF|premature|aborted|pipe/i.test(
        x.message ?? "",
      )
    ) {
      return true;
    }
  }
  return x.cause !== undefined && isRetryable(x.cause, depth + 1);
}

/** Full-jitter exponential backoff: a random delay in [0, min(max, base·2^n)). */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceil = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * ceil);
}

/** `litestream-timestamp` metadata: the one RFC 3339 parser (zone required, real dates only). */
export const parseRFC3339Nano: (s: string) => Date | null = parseRFC3339;

type Sdk = typeof import("@aws-sdk/client-s3");
let sdkModule: Promise<Sdk> | null = null;
function loadSdk(): Promise<Sdk> {
  sdkModule ??= import("@aws-sdk/client-s3");
  return sdkModule;
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1 && parts[0].length === n) return parts[0];
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class S3ReplicaClient implements ReplicaClient {
  readonly type = "s3";
  readonly bucket: string;
  readonly path: string;
  readonly opts: Readonly<S3ClientOptions>;
  readonly partSize: number;
  readonly concurrency: number;
  #client: Promise<S3Client> | null = null;
  /** key → creation time from metadata, valid while the ETag is unchanged. */
  #times = new Map<string, { etag: string | undefined; createdAt: Date }>();
  #batchDelete = true;

  constructor(opts: S3ClientOptions) {
    if (!opts.bucket) throw new Error("s3 replica: bucket required");
    this.opts = { ...opts };
    this.bucket = opts.bucket;
    this.path = opts.path.replace(/^\/+|\/+$/g, "");
    this.partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    if (this.partSize < MIN_PART_SIZE || this.partSize > MAX_PART_SIZE) {
      throw new Error(
        `s3 replica: part size must be between 5 MiB and 5 GiB, got ${this.partSize}`,
      );
    }
    this.concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
  }

  get location(): string {
    const ep = this.opts.endpoint ? ` (${this.#endpointForDisplay()})` : "";
    return `s3://${this.bucket}/${this.path}${ep}`;
  }

  #endpointForDisplay(): string {
    try {
      const u = new URL(this.opts.endpoint!);
      u.username = "";
      u.password = "";
      return u.origin;
    } catch {
      return "endpoint";
    }
  }

  /** `<path>/<level %04x>/` — Litestream v0.5's S3 layout (path "" gives a leading "/", as there). */
  levelPrefix(level: number): string {
    return `${this.path}/${level.toString(16).padStart(4, "0")}/`;
  }

  key(level: number, minTXID: bigint, maxTXID: bigint): string {
    return this.levelPrefix(level) + formatLtxFileName(minTXID, maxTXID);
  }

  /** The SDK client, created on first use. */
  client(): Promise<S3Client> {
    this.#client ??= this.#createClient().catch((e) => {
      this.#client = null;
      throw e;
    });
    return this.#client;
  }

  async #createClient(): Promise<S3Client> {
    const sdk = await loadSdk();
    const o = this.opts;
    const env = o.env ?? ((k: string) => Deno.env.get(k));
    const retry = {
      maxAttempts: Math.max(1, o.maxAttempts ?? 10),
      baseMs: o.retryBaseMs ?? 200,
      maxMs: o.retryMaxMs ?? 20_000,
    };
    const timeout = o.requestTimeoutMs ?? 120_000;
    const cfg: S3ClientConfig = {
      region: o.region || DEFAULT_REGION,
      forcePathStyle: o.forcePathStyle ?? false,
      maxAttempts: retry.maxAttempts,
      retryStrategy: {
        mode: "standard",
        acquireInitialRetryToken: () =>
          Promise.resolve({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
        refreshRetryTokenForRetry: (token, info) => {
          const n = token.getRetryCount() + 1;
          if (n >= retry.maxAttempts || !isRetryable(info.error)) {
            return Promise.reject(info.error);
          }
          let delay = backoffMs(n - 1, retry.baseMs, retry.maxMs);
          const hint = info.retryAfterHint?.getTime();
          if (hint && hint > Date.now()) {
            delay = Math.max(delay, Math.min(hint - Date.now(), retry.maxMs));
          }
          log("debug", "s3 request failed; retrying", {
            replica: this.location,
            attempt: n,
            delayMs: delay,
            error: (info.error as Error)?.message ?? String(info.error),
          });
          return Promise.resolve({ getRetryCount: () => n, getRetryDelay: () => delay });
        },
        recordSuccess: () => {},
      },
      requestHandler: {
        connectionTimeout: Math.min(timeout, 30_000),
        // a whole request's deadline (a stalled server must not hang replication)
        requestTimeout: timeout,
        throwOnRequestTimeout: true,
        ...(o.skipVerify
          ? {
            httpsAgent: new (await import("node:https")).Agent({
              rejectUnauthorized: false,
              keepAlive: true,
            }),
          }
          : {}),
      },
    };
    if (o.endpoint) {
      cfg.endpoint = o.endpoint;
      // S3-compatible stores mostly reject the SDK's default flexible checksums (aws-chunked)
      cfg.requestChecksumCalculation = "WHEN_REQUIRED";
      cfg.responseChecksumValidation = "WHEN_REQUIRED";
    } else {
      cfg.followRegionRedirects = true; // no region lookup request: follow S3's redirect when wrong
    }
    const keyId = o.accessKeyId || undefined;
    const secret = o.secretAccessKey || undefined;
    if (keyId && secret) {
      cfg.credentials = { accessKeyId: keyId, secretAccessKey: secret };
    } else if (!env("AWS_ACCESS_KEY_ID")) {
      const k = env("LITESTREAM_ACCESS_KEY_ID");
      const s = env("LITESTREAM_SECRET_ACCESS_KEY");
      if (k && s) cfg.credentials = { accessKeyId: k, secretAccessKey: s };
    } // else the SDK's default chain: AWS_* variables, shared files, SSO, instance roles
    const client = new sdk.S3Client(cfg);
    if (o.requireContentMD5 ?? true) {
      const { createHash } = await import("node:crypto");
      client.middlewareStack.add(
        (next, context) => (args) => {
          const req = args.request as { headers?: Record<string, string>; body?: unknown };
          if (context.commandName === "DeleteObjectsCommand" && req.headers) {
            const body = req.body;
            if (typeof body === "string" || body instanceof Uint8Array) {
              req.headers["content-md5"] = createHash("md5").update(body).digest("base64");
            }
          }
          return next(args);
        },
        { step: "build", name: "strataDeleteObjectsContentMD5" },
      );
    }
    return client;
  }

  /** Wraps an SDK failure in a clear error naming bucket, key, operation and status. */
  #fail(operation: string, key: string | undefined, e: unknown): Error {
    if (e instanceof S3RequestError || e instanceof ReplicaFileNotFoundError) return e;
    const status = statusOf(e);
    const code = codeOf(e);
    const msg = (e as Error)?.message || String(e);
    let detail = msg;
    if (code === "NoSuchBucket") detail = `bucket ${this.bucket} does not exist`;
    else if (status === 403) {
      detail = `access denied (${msg}); check the credentials and the bucket's policy`;
    } else if (code === "CredentialsProviderError") {
      detail =
        `no credentials: set access-key-id/secret-access-key, LITESTREAM_ACCESS_KEY_ID/LITESTREAM_SECRET_ACCESS_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (${msg})`;
    } else if (isRetryable(e)) {
      const attempts = (e as SdkError)?.$metadata?.attempts;
      detail = `${msg}${attempts ? ` (after ${attempts} attempts)` : ""}`;
    }
    return new S3RequestError(operation, this.bucket, key, status, code, detail, e);
  }

  async #retryOuter<T>(
    operation: string,
    key: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    // The SDK retries requests; this retries what fails after its retry step
    // (bodies that break while they are parsed).
    const max = Math.max(1, Math.min(this.opts.maxAttempts ?? 10, 4));
    for (let attempt = 0;; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const status = statusOf(e);
        const brokenBody = status !== undefined && status >= 200 && status < 300;
        if (!brokenBody || attempt + 1 >= max) throw this.#fail(operation, key, e);
        await sleep(
          backoffMs(attempt, this.opts.retryBaseMs ?? 200, this.opts.retryMaxMs ?? 20_000),
        );
      }
    }
  }

  async listFiles(level: number, seek = 0n, opts: S3ListOptions = {}): Promise<ReplicaFile[]> {
    const sdk = await loadSdk();
    const client = await this.client();
    const prefix = this.levelPrefix(level);
    const found: { file: ReplicaFile; key: string; etag: string | undefined }[] = [];
    let token: string | undefined;
    do {
      const page = await this.#retryOuter("ListObjectsV2", prefix, () =>
        client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ContinuationToken: token,
            // keys sort by minTXID (16 hex digits): skip straight past the ones before `seek`
            StartAfter: !token && seek > 1n ? prefix + formatTXID(seek) : undefined,
          }),
        ));
      for (const obj of (page.Contents ?? []) as _Object[]) {
        const key = obj.Key ?? "";
        const name = key.slice(prefix.length);
        if (!key.startsWith(prefix) || name.includes("/")) continue;
        const r = parseLtxFileName(name);
        if (!r || r.minTXID < seek) continue;
        found.push({
          key,
          etag: obj.ETag,
          file: {
            level,
            minTXID: r.minTXID,
            maxTXID: r.maxTXID,
            size: obj.Size ?? 0,
            createdAt: obj.LastModified ?? new Date(0),
          },
        });
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new S3RequestError(
          "ListObjectsV2",
          this.bucket,
          prefix,
          undefined,
          undefined,
          "truncated listing without a continuation token",
        );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);

    if (opts.metadata ?? true) await this.#readTimes(found);
    return found.filter((f) => f.file.size >= 0).map((f) => f.file).sort(compareFiles);
  }

  /** Fills in creation times from metadata, one HeadObject per object not already known. */
  async #readTimes(
    found: { file: ReplicaFile; key: string; etag: string | undefined }[],
  ): Promise<void> {
    const todo = found.filter((f) => {
      const c = this.#times.get(f.key);
      if (c && c.etag === f.etag) {
        f.file.createdAt = c.createdAt;
        return false;
      }
      return true;
    });
    if (todo.length === 0) return;
    const sdk = await loadSdk();
    const client = await this.client();
    await forEachLimited(todo, this.opts.metadataConcurrency ?? 32, async (f) => {
      let head;
      try {
        head = await this.#retryOuter(
          "HeadObject",
          f.key,
          () =>
            client.send(
              new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: f.key, ...this.#sseRead() }),
            ),
        );
      } catch (e) {
        const s = statusOf((e as Error).cause ?? e);
        if (s === 404) {
          f.file.size = -1; // deleted since the listing
          return;
        }
        throw e;
      }
      const raw = head.Metadata?.[METADATA_TIMESTAMP];
      const t = raw ? parseRFC3339Nano(raw) : null;
      if (t) f.file.createdAt = t;
      this.#remember(f.key, head.ETag ?? f.etag, f.file.createdAt);
    });
  }

  #remember(key: string, etag: string | undefined, createdAt: Date): void {
    if (this.#times.size > 200_000) this.#times.clear();
    this.#times.set(key, { etag, createdAt });
  }

  openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    return this.#openKey(this.key(level, minTXID, maxTXID), range);
  }

  /** The entries of `dir` under the replica path (for other layouts, e.g. Litestream v0.3). */
  async listRaw(dir: string): Promise<RawEntry[]> {
    const sdk = await loadSdk();
    const client = await this.client();
    const prefix = joinKey(this.path, dir) + "/";
    const out: RawEntry[] = [];
    const rel = (key: string) => joinKey(dir, key.slice(prefix.length));
    let token: string | undefined;
    do {
      const page = await this.#retryOuter("ListObjectsV2", prefix, () =>
        client.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            Delimiter: "/",
            ContinuationToken: token,
          }),
        ));
      for (const p of page.CommonPrefixes ?? []) {
        out.push({ name: rel(p.Prefix ?? ""), isDir: true, size: 0, modified: new Date(0) });
      }
      for (const obj of (page.Contents ?? []) as _Object[]) {
        out.push({
          name: rel(obj.Key ?? ""),
          isDir: false,
          size: obj.Size ?? 0,
          modified: obj.LastModified ?? new Date(0),
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** Opens the object at `path` under the replica path. */
  openRaw(path: string): Promise<ReadableStream<Uint8Array>> {
    return this.#openKey(joinKey(this.path, path));
  }

  async #openKey(key: string, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (range && range.length <= 0) return new ReadableStream({ start: (c) => c.close() });
    const start = range?.offset ?? 0;
    const first = await this.#get(key, start, range ? start + range.length - 1 : undefined);
    const total = first.ContentLength ?? 0;
    const etag = first.ETag;
    const end = start + total; // exclusive
    const chunk = this.partSize;
    if (this.concurrency <= 1 || total <= 2 * chunk) {
      return this.#resumable(key, first, start, end, etag);
    }
    // Large: the first chunk streams from this response while later chunks are
    // fetched as ranged GETs, at most `concurrency` in flight (bounded memory).
    const head = this.#resumable(key, first, start, start + chunk, etag, true);
    const chunks: { a: number; b: number }[] = [];
    for (let a = start + chunk; a < end; a += chunk) {
      chunks.push({ a, b: Math.min(a + chunk, end) });
    }
    const inflight: Promise<Uint8Array>[] = [];
    let nextChunk = 0;
    const launch = () => {
      while (nextChunk < chunks.length && inflight.length < this.concurrency) {
        const c = chunks[nextChunk++];
        const p = this.#fetchRange(key, c.a, c.b, etag);
        p.catch(() => {}); // surfaced when awaited in order
        inflight.push(p);
      }
    };
    launch();
    const headReader = head.getReader();
    let headDone = false;
    return new ReadableStream<Uint8Array>({
      pull: async (ctrl) => {
        if (!headDone) {
          const { value, done } = await headReader.read();
          if (!done) {
            ctrl.enqueue(value);
            return;
          }
          headDone = true;
        }
        const p = inflight.shift();
        if (!p) {
          ctrl.close();
          return;
        }
        const bytes = await p;
        launch();
        ctrl.enqueue(bytes);
      },
      cancel: () => {
        headReader.cancel().catch(() => {}); // never awaited: a broken body may not settle
        nextChunk = chunks.length;
      },
    }, { highWaterMark: 0 });
  }

  /** Encryption parameters of a write (PutObject, CreateMultipartUpload, UploadPart). */
  #sseWrite(): Record<string, string> {
    const e = this.opts.sse;
    if (!e) return {};
    if ("kmsKeyId" in e) return { ServerSideEncryption: "aws:kms", SSEKMSKeyId: e.kmsKeyId };
    return this.#sseRead();
  }

  /** Encryption parameters of a read (SSE-C: the key again; KMS objects need none). */
  #sseRead(): Record<string, string> {
    const e = this.opts.sse;
    if (!e || "kmsKeyId" in e) return {};
    return {
      SSECustomerAlgorithm: e.customerAlgorithm,
      SSECustomerKey: e.customerKey,
      SSECustomerKeyMD5: e.customerKeyMD5,
    };
  }

  /** GET of bytes [a, b] (b inclusive; b undefined = to the end), or the whole object. */
  async #get(
    key: string,
    a: number,
    b: number | undefined,
    etag?: string,
  ): Promise<GetObjectCommandOutput> {
    const sdk = await loadSdk();
    const client = await this.client();
    const wantRange = a > 0 || b !== undefined;
    try {
      return await client.send(
        new sdk.GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...this.#sseRead(),
          Range: wantRange ? `bytes=${a}-${b ?? ""}` : undefined,
          IfMatch: etag,
        }),
      );
    } catch (e) {
      if (codeOf(e) === "NoSuchKey" || (statusOf(e) === 404 && codeOf(e) !== "NoSuchBucket")) {
        throw new ReplicaFileNotFoundError(this.location, key);
      }
      if (statusOf(e) === 412) {
        throw new S3RequestError(
          "GetObject",
          this.bucket,
          key,
          412,
          codeOf(e),
          "the object changed while it was being read",
          e,
        );
      }
      throw this.#fail("GetObject", key, e);
    }
  }

  /** Bytes [a, b) fetched whole, retried when the body breaks. */
  async #fetchRange(
    key: string,
    a: number,
    b: number,
    etag: string | undefined,
  ): Promise<Uint8Array> {
    const stream = this.#resumable(key, await this.#get(key, a, b - 1, etag), a, b, etag);
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of stream) {
      parts.push(c);
      n += c.length;
    }
    return concat(parts, n);
  }

  /**
   * The body of `resp` as bytes [a, end): a read that fails, stalls or ends
   * short resumes with a ranged GET pinned to `etag`.
   */
  #resumable(
    key: string,
    resp: GetObjectCommandOutput,
    a: number,
    end: number,
    etag: string | undefined,
    stopAtEnd = false,
  ): ReadableStream<Uint8Array> {
    let pos = a;
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = this.#bodyReader(resp);
    let failures = 0;
    const idleMs = this.opts.requestTimeoutMs ?? 120_000;
    const maxFailures = Math.max(1, this.opts.maxAttempts ?? 10);
    const readIdle = async (r: ReadableStreamDefaultReader<Uint8Array>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        return await Promise.race([
          r.read(),
          new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(new Error(`no data for ${idleMs} ms`)), idleMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    };
    return new ReadableStream<Uint8Array>({
      pull: async (ctrl) => {
        while (true) {
          if (pos >= end) {
            if (reader) {
              const r = reader;
              reader = null;
              if (stopAtEnd) r.cancel().catch(() => {});
              else r.releaseLock();
            }
            ctrl.close();
            return;
          }
          try {
            if (!reader) {
              const resp2 = await this.#get(key, pos, end - 1, etag);
              reader = this.#bodyReader(resp2);
            }
            const { value, done } = await readIdle(reader);
            if (done) throw new Error(`body ended after ${pos - a} of ${end - a} bytes`);
            let v = value;
            if (pos + v.length > end) v = v.subarray(0, end - pos);
            pos += v.length;
            failures = 0;
            if (v.length > 0) {
              ctrl.enqueue(v);
              return;
            }
          } catch (e) {
            if (e instanceof ReplicaFileNotFoundError || e instanceof S3RequestError) throw e;
            const r = reader;
            reader = null;
            r?.cancel().catch(() => {}); // not awaited: a destroyed body may never settle
            if (++failures >= maxFailures) {
              throw new S3RequestError(
                "GetObject",
                this.bucket,
                key,
                undefined,
                undefined,
                `reading the body failed ${failures} times: ${(e as Error).message}`,
                e,
              );
            }
            log("debug", "s3 read broke; resuming", {
              replica: this.location,
              key,
              at: pos,
              error: (e as Error).message,
            });
            await sleep(
              backoffMs(failures - 1, this.opts.retryBaseMs ?? 200, this.opts.retryMaxMs ?? 20_000),
            );
          }
        }
      },
      cancel: () => {
        reader?.cancel().catch(() => {});
        reader = null;
      },
    }, { highWaterMark: 0 });
  }

  #bodyReader(resp: GetObjectCommandOutput): ReadableStreamDefaultReader<Uint8Array> {
    const body = resp.Body as
      | { transformToWebStream(): ReadableStream<Uint8Array> }
      | undefined;
    if (!body) return new ReadableStream<Uint8Array>({ start: (c) => c.close() }).getReader();
    return body.transformToWebStream().getReader();
  }

  async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const sdk = await loadSdk();
    const client = await this.client();
    const key = this.key(level, minTXID, maxTXID);
    const params = {
      Bucket: this.bucket,
      Key: key,
      Metadata: { [METADATA_TIMESTAMP]: formatRFC3339Nano(createdAt) },
      StorageClass: this.opts.storageClass as undefined,
      ...this.#sseWrite(),
    };
    // Buffer up to one part: a smaller file is one PUT (atomic, retryable).
    const reader = data.getReader();
    const parts: Uint8Array[] = [];
    let n = 0;
    let ended = false;
    try {
      while (n < this.partSize) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        parts.push(value);
        n += value.length;
      }
    } catch (e) {
      reader.releaseLock();
      throw e;
    }
    let etag: string | undefined;
    let size = n;
    if (ended) {
      reader.releaseLock();
      const body = concat(parts, n);
      try {
        const out = await client.send(
          new sdk.PutObjectCommand({ ...params, Body: body, ContentLength: body.length }),
        );
        etag = out.ETag;
      } catch (e) {
        throw this.#fail("PutObject", key, e);
      }
    } else {
      // Multipart: parts stream through (at most `concurrency` parts in memory);
      // the object appears only when CompleteMultipartUpload succeeds, and the
      // upload is aborted on any failure, the source's included.
      let counted = n;
      const rest = new ReadableStream<Uint8Array>({
        start(ctrl) {
          for (const p of parts) ctrl.enqueue(p);
          parts.length = 0;
        },
        async pull(ctrl) {
          const { value, done } = await reader.read();
          if (done) {
            ctrl.close();
            return;
          }
          counted += value.length;
          ctrl.enqueue(value);
        },
        async cancel(reason) {
          await reader.cancel(reason).catch(() => {});
        },
      }, { highWaterMark: 0 });
      const { Upload } = await import("@aws-sdk/lib-storage");
      const upload = new Upload({
        client,
        params: { ...params, Body: rest },
        partSize: this.partSize,
        queueSize: this.concurrency,
        leavePartsOnError: false,
      });
      try {
        const out = await upload.done();
        etag = out.ETag;
      } catch (e) {
        reader.cancel().catch(() => {});
        // A retried CompleteMultipartUpload whose first try went through (its
        // response was lost) finds no upload; the object is then whole.
        const lost = codeOf(e) === "NoSuchUpload" ||
          (statusOf(e) === 404 && codeOf(e) !== "NoSuchBucket");
        const done = lost &&
          await this.#isComplete(key, counted, params.Metadata[METADATA_TIMESTAMP]);
        if (!done) throw this.#fail("multipart upload", key, e);
      }
      size = counted;
    }
    createdAt = new Date(createdAt.getTime());
    this.#remember(key, etag, createdAt);
    return { level, minTXID, maxTXID, size, createdAt };
  }

  /** True when `key` exists with `size` bytes and this creation time (a completed upload). */
  async #isComplete(key: string, size: number, timestamp: string): Promise<boolean> {
    const sdk = await loadSdk();
    const client = await this.client();
    try {
      const head = await client.send(
        new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key, ...this.#sseRead() }),
      );
      return head.ContentLength === size && head.Metadata?.[METADATA_TIMESTAMP] === timestamp;
    } catch {
      return false;
    }
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    if (files.length === 0) return;
    const keys = [...new Set(files.map((f) => this.key(f.level, f.minTXID, f.maxTXID)))];
    for (const k of keys) this.#times.delete(k);
    const sdk = await loadSdk();
    const client = await this.client();
    for (let i = 0; i < keys.length; i += MAX_DELETE_KEYS) {
      const batch = keys.slice(i, i + MAX_DELETE_KEYS);
      if (this.#batchDelete) {
        try {
          const out = await client.send(
            new sdk.DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
            }),
          );
          const errors = (out.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
          if (errors.length > 0) {
            const first = errors.slice(0, 5).map((e) => `${e.Key}: ${e.Code} ${e.Message ?? ""}`);
            throw new S3RequestError(
              "DeleteObjects",
              this.bucket,
              errors[0].Key,
              undefined,
              errors[0].Code,
              `${errors.length} of ${batch.length} objects not deleted: ${first.join("; ")}`,
            );
          }
          continue;
        } catch (e) {
          const status = statusOf(e);
          const code = codeOf(e);
          const unsupported = status === 501 || status === 405 ||
            code === "NotImplemented" || code === "MethodNotAllowed" ||
            (status === 400 && (code === "MalformedXML" || code === "InvalidRequest"));
          if (!unsupported) throw this.#fail("DeleteObjects", batch[0], e);
          log("info", "s3 store does not support DeleteObjects; deleting one object at a time", {
            replica: this.location,
            code,
          });
          this.#batchDelete = false;
        }
      }
      await forEachLimited(batch, Math.max(this.concurrency, 4), async (Key) => {
        try {
          await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key }));
        } catch (e) {
          if (statusOf(e) === 404 && codeOf(e) !== "NoSuchBucket") return;
          throw this.#fail("DeleteObject", Key, e);
        }
      });
    }
  }

  /** Releases the SDK client's connections. */
  async close(): Promise<void> {
    const c = this.#client;
    this.#client = null;
    if (c) (await c.catch(() => null))?.destroy();
  }
}

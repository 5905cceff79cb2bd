/**
 * The `gs` (Google Cloud Storage) replica client, on npm
 * `@google-cloud/storage` (loaded on first use). Layout as Litestream v0.5's
 * gs client: objects `<path>/ltx/<level>/<min>-<max>.ltx` with the creation
 * time in custom metadata `litestream-timestamp` (RFC 3339, nanosecond form).
 * An object is uploaded in one request and exists only once it is complete.
 */

import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type * as Gcs from "@google-cloud/storage";
import type { GcsReplicaConfig } from "../config/gcs_config.ts";
import { parseLtxFileName } from "../ltx/names.ts";
import {
  type ByteRange,
  compareFiles,
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "./client.ts";
import {
  DEFAULT_RETRY,
  forEachLimited,
  formatRFC3339Nano,
  Limiter,
  ltxKey,
  ltxLevelDir,
  parseRFC3339,
  PermanentStorageError,
  replayable,
  type RetryOptions,
  withRetry,
} from "./remote_util.ts";

export const GCS_TIMESTAMP_KEY = "litestream-timestamp";

/** Uploads up to this size are held in memory; larger ones go through a temporary file. */
const SMALL_OBJECT = 8 * 1024 * 1024;

export interface GcsClientOptions {
  retry?: RetryOptions;
  /** Concurrent requests per client. */
  concurrency?: number;
  /** Passed to the SDK's Storage constructor (apiEndpoint, projectId, keyFilename, …). */
  storageOptions?: Record<string, unknown>;
}

interface ApiErrorLike {
  code?: number | string;
  message?: string;
}

function status(e: unknown): number | undefined {
  const c = (e as ApiErrorLike)?.code;
  return typeof c === "number" ? c : undefined;
}

/** The parts of the SDK's Storage object a plain media GET needs. */
interface SdkStorage {
  apiEndpoint: string;
  customEndpoint: boolean;
  useAuthWithCustomEndpoint?: boolean;
  authClient: { getRequestHeaders(url?: string): Promise<unknown> };
}

export class GcsReplicaClient implements ReplicaClient {
  readonly type = "gs";
  readonly cfg: GcsReplicaConfig;
  readonly #retry: RetryOptions;
  readonly #limit: Limiter;
  readonly #concurrency: number;
  readonly #storageOptions: Record<string, unknown>;
  #bucket: Promise<Gcs.Bucket> | null = null;

  constructor(cfg: GcsReplicaConfig, opts: GcsClientOptions = {}) {
    this.cfg = cfg;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    this.#concurrency = opts.concurrency ?? 8;
    this.#limit = new Limiter(this.#concurrency);
    this.#storageOptions = opts.storageOptions ?? {};
  }

  get location(): string {
    return `gs://${this.cfg.bucket}${this.cfg.path ? "/" + this.cfg.path : ""}`;
  }

  #bucketHandle(): Promise<Gcs.Bucket> {
    this.#bucket ??= (async () => {
      const { Storage, IdempotencyStrategy } = await import("@google-cloud/storage");
      // The SDK's download path stacks more than Node's default 10 listeners on one
      // stream (a warning, not a leak); raise the default so it stays quiet.
      EventEmitter.defaultMaxListeners = Math.max(EventEmitter.defaultMaxListeners, 32);
      // The SDK retries 408/429/5xx and dropped connections with exponential backoff and
      // jitter. Every request here is safe to repeat: reads, lists, deletes that ignore
      // "not found", and uploads that replace an immutable name.
      const storage = new Storage({
        retryOptions: {
          autoRetry: true,
          maxRetries: this.#retry.attempts - 1,
          retryDelayMultiplier: 2,
          maxRetryDelay: Math.max(2, this.#retry.maxDelayMs / 1000), // seconds; the SDK starts at 1
          totalTimeout: 600,
          idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        },
        userAgent: "strata",
        ...this.#storageOptions,
      });
      return storage.bucket(this.cfg.bucket);
    })().catch((e) => {
      this.#bucket = null;
      throw e;
    });
    return this.#bucket;
  }

  #explain(op: string, key: string, e: unknown): Error {
    if (e instanceof PermanentStorageError || e instanceof ReplicaFileNotFoundError) return e;
    const code = status(e);
    const msg = ((e as ApiErrorLike)?.message ?? String(e)).split("\n")[0];
    const where = `gs bucket ${this.cfg.bucket}`;
    const st = code ? ` (HTTP ${code})` : "";
    if (/default credentials|Could not load the default credentials|invalid_grant/i.test(msg)) {
      return new PermanentStorageError(
        `${where}: ${op} ${key}: no usable Google credentials (${msg}); set ` +
          `GOOGLE_APPLICATION_CREDENTIALS to a service account key file or run ` +
          `"gcloud auth application-default login"`,
        { cause: e },
      );
    }
    if (code === 401 || code === 403) {
      return new PermanentStorageError(`${where}: access denied: ${op} ${key}${st}: ${msg}`, {
        cause: e,
      });
    }
    if (code === 404 && /bucket/i.test(msg)) {
      return new PermanentStorageError(`${where}: the bucket does not exist: ${op} ${key}${st}`, {
        cause: e,
      });
    }
    return new Error(`${where}: ${op} ${key}${st}: ${msg}`, { cause: e });
  }

  listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const dir = ltxLevelDir(this.cfg.path, level);
    return this.#limit.run(async () => {
      const bucket = await this.#bucketHandle();
      const out: ReplicaFile[] = [];
      try {
        let query: Gcs.GetFilesOptions | null = {
          prefix: dir + "/",
          autoPaginate: false,
          maxResults: 1000,
        };
        while (query) {
          const res = await bucket.getFiles(query);
          const files = res[0];
          const next = res[1] as Gcs.GetFilesOptions | null | undefined;
          for (const f of files) {
            const base = f.name.slice(dir.length + 1);
            if (base.includes("/")) continue;
            const r = parseLtxFileName(base);
            if (!r || r.minTXID < seek) continue;
            const md = f.metadata;
            const ts = md.metadata?.[GCS_TIMESTAMP_KEY];
            const createdAt = (typeof ts === "string" ? parseRFC3339(ts) : null) ??
              new Date(md.timeCreated ?? 0);
            out.push({ level, ...r, size: Number(md.size ?? 0), createdAt });
          }
          query = next?.pageToken ? next : null;
        }
      } catch (e) {
        throw this.#explain("list", dir + "/", e);
      }
      return out.sort(compareFiles);
    });
  }

  /**
   * Reads an object (or a byte range) with a plain media GET: the SDK's read
   * stream fails outside any promise on Deno when a response is an error
   * (its pipeline of a fetch body), so reads go through `fetch`, with the
   * SDK's endpoint and credentials, retried like every other request here.
   */
  async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const key = ltxKey(this.cfg.path, level, minTXID, maxTXID);
    if (range && range.length === 0) return new ReadableStream({ start: (c) => c.close() });
    const bucket = await this.#bucketHandle();
    const storage = bucket.storage as unknown as SdkStorage;
    const url = `${storage.apiEndpoint}/storage/v1/b/${encodeURIComponent(bucket.name)}/o/${
      encodeURIComponent(key)
    }?alt=media`;
    const res = await this.#limit.run(() =>
      withRetry(
        `gs read ${key}`,
        async () => {
          const headers = new Headers();
          if (!storage.customEndpoint || storage.useAuthWithCustomEndpoint) {
            const auth = await storage.authClient.getRequestHeaders(url);
            new Headers(auth as HeadersInit).forEach((v, k) => headers.set(k, v));
          }
          if (range) {
            headers.set("range", `bytes=${range.offset}-${range.offset + range.length - 1}`);
          }
          const r = await fetch(url, { headers });
          if (r.ok) return r;
          const text = (await r.text()).slice(0, 300);
          const err = Object.assign(new Error(text || r.statusText), { code: r.status });
          if (r.status === 404 && !/bucket/i.test(text)) {
            throw new ReplicaFileNotFoundError(this.location, key);
          }
          throw err;
        },
        (e) => {
          if (e instanceof ReplicaFileNotFoundError) return false;
          const st = status(e);
          return st === undefined ? e instanceof TypeError : st === 408 || st === 429 || st >= 500;
        },
        this.#retry,
      )
    ).catch((e) => {
      throw this.#explain("read", key, e);
    });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const key = ltxKey(this.cfg.path, level, minTXID, maxTXID);
    const bucket = await this.#bucketHandle();
    const metadata = { metadata: { [GCS_TIMESTAMP_KEY]: formatRFC3339Nano(createdAt) } };
    // the whole file first (in memory up to SMALL_OBJECT, else a temporary file), so a
    // failed request is retried from the start and a failing source uploads nothing
    const src = await replayable(data, SMALL_OBJECT).catch((e) => {
      throw this.#explain("write", key, e);
    });
    const options = { resumable: false, contentType: "application/octet-stream", metadata };
    try {
      await this.#limit.run(() =>
        withRetry(
          `gs write ${key}`,
          async () => {
            const bytes = src.bytes();
            if (bytes) return await bucket.file(key).save(Buffer.from(bytes), options);
            const body = await src.open();
            await pipeline(
              Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]),
              bucket.file(key).createWriteStream(options),
            );
          },
          (e) => {
            const st = status(e);
            return st === undefined ? !(e instanceof PermanentStorageError) : st === 408 ||
              st === 429 || st >= 500;
          },
          this.#retry,
        )
      ).catch((e) => {
        throw this.#explain("write", key, e);
      });
    } finally {
      await src.close();
    }
    const size = src.size;
    return { level, minTXID, maxTXID, size, createdAt };
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    if (files.length === 0) return;
    const bucket = await this.#bucketHandle();
    await forEachLimited(files, this.#concurrency, async (f) => {
      const key = ltxKey(this.cfg.path, f.level, f.minTXID, f.maxTXID);
      try {
        await bucket.file(key).delete({ ignoreNotFound: true });
      } catch (e) {
        throw this.#explain("delete", key, e);
      }
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

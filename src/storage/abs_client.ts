/**
 * The `abs` (Azure Blob Storage) replica client, on npm `@azure/storage-blob`
 * (loaded on first use). Layout as Litestream v0.5's abs client: block blobs
 * `<path>/ltx/<level>/<min>-<max>.ltx`, content type application/octet-stream,
 * Hot tier, the creation time in metadata `litestreamtimestamp` (RFC 3339,
 * nanosecond form). A blob is written as staged blocks and one commit, so a
 * failed upload leaves nothing visible (nor disturbs an older blob).
 */

import { Readable } from "node:stream";
import type * as Azure from "@azure/storage-blob";
import type { AbsReplicaConfig } from "../config/abs_config.ts";
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
  type RetryOptions,
} from "./remote_util.ts";

/** Azure metadata keys are C# identifiers: no hyphen (Litestream's MetadataKeyTimestamp). */
export const ABS_TIMESTAMP_KEY = "litestreamtimestamp";

export interface AbsClientOptions {
  retry?: RetryOptions;
  /** Concurrent requests per client (and blocks in flight per upload). */
  concurrency?: number;
  /** Upload block size (memory per upload is about this times concurrency + 1). */
  blockSize?: number;
}

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { errorCode?: string };
}

function errCode(e: unknown): string | undefined {
  const r = e as RestErrorLike;
  return r?.details?.errorCode ?? r?.code;
}

export class AbsReplicaClient implements ReplicaClient {
  readonly type = "abs";
  readonly cfg: AbsReplicaConfig;
  readonly #retry: RetryOptions;
  readonly #limit: Limiter;
  readonly #concurrency: number;
  readonly #blockSize: number;
  #container: Promise<Azure.ContainerClient> | null = null;

  constructor(cfg: AbsReplicaConfig, opts: AbsClientOptions = {}) {
    this.cfg = cfg;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    this.#concurrency = opts.concurrency ?? 4;
    this.#limit = new Limiter(this.#concurrency * 2);
    this.#blockSize = opts.blockSize ?? 4 * 1024 * 1024;
  }

  get location(): string {
    const acct = this.cfg.accountName ? `${this.cfg.accountName}@` : "";
    return `abs://${acct}${this.cfg.container}${this.cfg.path ? "/" + this.cfg.path : ""}`;
  }

  #containerClient(): Promise<Azure.ContainerClient> {
    this.#container ??= this.#init().catch((e) => {
      this.#container = null;
      throw e;
    });
    return this.#container;
  }

  async #init(): Promise<Azure.ContainerClient> {
    const az = await import("@azure/storage-blob");
    const c = this.cfg;
    const endpoint = c.endpoint ??
      (c.accountName ? `https://${c.accountName}.blob.core.windows.net` : undefined);
    if (!endpoint) {
      throw new PermanentStorageError(
        `abs ${this.location}: no account: set "account-name" (abs://account@container/path) or "endpoint"`,
      );
    }
    const sas = c.sasToken ?? Deno.env.get("LITESTREAM_AZURE_SAS_TOKEN");
    const key = c.accountKey ?? Deno.env.get("LITESTREAM_AZURE_ACCOUNT_KEY");
    // The SDK retries throttling (429/503), server errors and dropped connections, with
    // exponential backoff and jitter; its attempts are ours.
    const pipeline = {
      retryOptions: {
        maxTries: this.#retry.attempts,
        retryDelayInMs: this.#retry.baseDelayMs,
        maxRetryDelayInMs: this.#retry.maxDelayMs,
        tryTimeoutInMs: 15 * 60_000,
      },
      userAgentOptions: { userAgentPrefix: "strata" },
    };
    let service: Azure.BlobServiceClient;
    if (sas) {
      const sep = endpoint.includes("?") ? "&" : "?";
      service = new az.BlobServiceClient(
        `${endpoint}${sep}${sas.replace(/^\?/, "")}`,
        new az.AnonymousCredential(),
        pipeline,
      );
    } else if (key) {
      if (!c.accountName) {
        throw new PermanentStorageError(
          `abs ${this.location}: an account key needs "account-name" (abs://account@container/path)`,
        );
      }
      service = new az.BlobServiceClient(
        endpoint,
        new az.StorageSharedKeyCredential(c.accountName, key),
        pipeline,
      );
    } else {
      throw new PermanentStorageError(
        `abs ${this.location}: no credentials: set "account-key" (or LITESTREAM_AZURE_ACCOUNT_KEY) ` +
          `or "sas-token" (or LITESTREAM_AZURE_SAS_TOKEN)`,
      );
    }
    return service.getContainerClient(c.container);
  }

  /** An SDK error as a message naming the container, blob, operation and status. */
  #explain(op: string, key: string, e: unknown): Error {
    if (e instanceof PermanentStorageError || e instanceof ReplicaFileNotFoundError) return e;
    const r = e as RestErrorLike;
    const code = errCode(e);
    const status = r?.statusCode ? ` (HTTP ${r.statusCode}${code ? " " + code : ""})` : "";
    const first = (r?.message ?? String(e)).split("\n")[0];
    const where = `abs ${
      this.cfg.endpoint ?? this.cfg.accountName
    } container ${this.cfg.container}`;
    if (code === "ContainerNotFound") {
      return new PermanentStorageError(
        `${where}: the container does not exist (create it first); ${op} ${key}${status}`,
        { cause: e },
      );
    }
    if (
      r?.statusCode === 401 || r?.statusCode === 403 ||
      /^(AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch|InvalidAuthenticationInfo)/
        .test(code ?? "")
    ) {
      return new PermanentStorageError(
        `${where}: access denied: ${op} ${key}${status}: check "account-name", "account-key" or "sas-token"`,
        { cause: e },
      );
    }
    return new Error(`${where}: ${op} ${key}${status}: ${first}`, { cause: e });
  }

  listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const dir = ltxLevelDir(this.cfg.path, level);
    return this.#limit.run(async () => {
      const cc = await this.#containerClient();
      const out: ReplicaFile[] = [];
      try {
        const pages = cc.listBlobsFlat({ prefix: dir + "/", includeMetadata: true })
          .byPage({ maxPageSize: 5000 });
        for await (const page of pages) {
          for (const b of page.segment.blobItems) {
            const base = b.name.slice(dir.length + 1);
            if (base.includes("/")) continue;
            const r = parseLtxFileName(base);
            if (!r || r.minTXID < seek) continue;
            const meta = b.metadata?.[ABS_TIMESTAMP_KEY];
            const createdAt = (meta ? parseRFC3339(meta) : null) ?? b.properties.createdOn ??
              b.properties.lastModified;
            out.push({ level, ...r, size: b.properties.contentLength ?? 0, createdAt });
          }
        }
      } catch (e) {
        throw this.#explain("list", dir + "/", e);
      }
      return out.sort(compareFiles);
    });
  }

  async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const key = ltxKey(this.cfg.path, level, minTXID, maxTXID);
    const cc = await this.#containerClient();
    if (range && range.length === 0) return new ReadableStream({ start: (c) => c.close() });
    const res = await this.#limit.run(async () => {
      try {
        // maxRetryRequests: a broken body is resumed from where it stopped.
        return await cc.getBlobClient(key).download(range?.offset ?? 0, range?.length, {
          maxRetryRequests: this.#retry.attempts,
        });
      } catch (e) {
        const code = errCode(e);
        if (
          code === "BlobNotFound" ||
          (e as RestErrorLike).statusCode === 404 && code !== "ContainerNotFound"
        ) {
          throw new ReplicaFileNotFoundError(this.location, key);
        }
        throw this.#explain("read", key, e);
      }
    });
    const body = res.readableStreamBody;
    if (!body) return new ReadableStream({ start: (c) => c.close() });
    return Readable.toWeb(body as Readable) as ReadableStream<Uint8Array>;
  }

  async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const key = ltxKey(this.cfg.path, level, minTXID, maxTXID);
    const cc = await this.#containerClient();
    let size = 0;
    const counted = data.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctrl) {
          size += chunk.length;
          ctrl.enqueue(chunk);
        },
      }),
    );
    const source = Readable.fromWeb(counted as Parameters<typeof Readable.fromWeb>[0]);
    await this.#limit.run(async () => {
      try {
        await cc.getBlockBlobClient(key).uploadStream(source, this.#blockSize, this.#concurrency, {
          blobHTTPHeaders: { blobContentType: "application/octet-stream" },
          metadata: { [ABS_TIMESTAMP_KEY]: formatRFC3339Nano(createdAt) },
          tier: "Hot",
        });
      } catch (e) {
        source.destroy();
        throw this.#explain("write", key, e);
      }
    });
    return { level, minTXID, maxTXID, size, createdAt };
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    if (files.length === 0) return;
    const cc = await this.#containerClient();
    await forEachLimited(files, this.#concurrency * 2, async (f) => {
      const key = ltxKey(this.cfg.path, f.level, f.minTXID, f.maxTXID);
      try {
        await cc.getBlobClient(key).delete();
      } catch (e) {
        if (errCode(e) === "BlobNotFound") return;
        throw this.#explain("delete", key, e);
      }
    });
  }

  /** Nothing to release (HTTP connections are pooled by the SDK). */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

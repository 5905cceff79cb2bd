/**
 * A replica in a NATS JetStream object store, laid out as Litestream's nats
 * replicas: objects `[path/]ltx/<level>/<min>-<max>.ltx` in a bucket created
 * beforehand, each with its creation time in the header
 * `Litestream-Timestamp` (RFC 3339), which listings return at no extra cost.
 * An object store write is atomic (the object appears when its last chunk
 * is in), and reads stream chunk by chunk. The connection (and the object
 * store handle) is made on first use and kept; `close()` ends it. The SDK
 * loads only when a nats replica is used.
 */

import { parseLtxFileName } from "../ltx/names.ts";
import type { NatsReplicaConfig } from "../config/nats_config.ts";
import {
  type ByteRange,
  compareFiles,
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "./client.ts";
import {
  formatRFC3339Nano,
  ltxKey,
  ltxLevelDir,
  parseRFC3339,
  PermanentStorageError,
} from "./remote_util.ts";

/** Litestream's header holding an object's creation time. */
export const NATS_TIMESTAMP_HEADER = "Litestream-Timestamp";

interface NcLike {
  close(): Promise<void>;
  isClosed(): boolean;
}

interface ObjectStoreLike {
  list(): Promise<
    { name: string; size: number; mtime: string; headers?: unknown; deleted?: boolean }[]
  >;
  get(
    name: string,
  ): Promise<{ data: ReadableStream<Uint8Array>; error: Promise<Error | null> } | null>;
  put(
    meta: { name: string; headers?: unknown },
    data: ReadableStream<Uint8Array>,
  ): Promise<unknown>;
  delete(name: string): Promise<unknown>;
}

export class NatsReplicaClient implements ReplicaClient {
  readonly type = "nats";
  readonly location: string;
  readonly #cfg: NatsReplicaConfig;
  #conn: Promise<{ nc: NcLike; os: ObjectStoreLike }> | null = null;

  constructor(cfg: NatsReplicaConfig) {
    this.#cfg = cfg;
    this.location = `${cfg.server}/${cfg.bucket}${cfg.path ? `/${cfg.path}` : ""}`;
  }

  async #store(): Promise<{ nc: NcLike; os: ObjectStoreLike }> {
    const current = this.#conn && await this.#conn.catch(() => null);
    // a connection the library gave up on (its reconnects exhausted) is made again
    if (current && current.nc.isClosed()) this.#conn = null;
    this.#conn ??= this.#connect().catch((e) => {
      this.#conn = null;
      throw e;
    });
    return await this.#conn;
  }

  async #connect() {
    const c = this.#cfg;
    const [{ connect }, { Objm }, core] = await Promise.all([
      import("@nats-io/transport-node"),
      import("@nats-io/obj"),
      import("@nats-io/nats-core"),
    ]);
    const auth = [];
    if (c.creds) auth.push(core.credsAuthenticator(await Deno.readFile(c.creds)));
    if (c.jwt) auth.push(core.jwtAuthenticator(c.jwt, new TextEncoder().encode(c.seed!)));
    if (c.nkey) {
      const seed = await Deno.readTextFile(c.nkey).catch(() => c.nkey!);
      auth.push(core.nkeyAuthenticator(new TextEncoder().encode(seed.trim())));
    }
    const tls = c.tls || c.rootCAs || c.clientCert
      ? {
        ...(c.rootCAs ? { caFile: c.rootCAs } : {}),
        ...(c.clientCert ? { certFile: c.clientCert, keyFile: c.clientKey } : {}),
      }
      : undefined;
    let nc;
    try {
      nc = await connect({
        servers: c.server,
        ...(c.username !== undefined ? { user: c.username, pass: c.password ?? "" } : {}),
        ...(c.token !== undefined ? { token: c.token } : {}),
        ...(auth.length > 0 ? { authenticator: auth } : {}),
        ...(tls ? { tls } : {}),
        // reconnect forever unless told otherwise: a replica outlives network trouble
        maxReconnectAttempts: c.maxReconnects ?? -1,
        ...(c.reconnectWaitMs !== undefined ? { reconnectTimeWait: c.reconnectWaitMs } : {}),
        timeout: c.timeoutMs ?? 10_000,
        name: "strata",
      });
    } catch (e) {
      const msg = (e as Error).message;
      const why = `nats ${c.server}: cannot connect: ${msg}`;
      if (/auth/i.test(msg)) throw new PermanentStorageError(`${why} (check the credentials)`);
      throw new Error(why);
    }
    try {
      const os = await new Objm(nc).open(c.bucket);
      return { nc, os: os as unknown as ObjectStoreLike };
    } catch (e) {
      await nc.close().catch(() => {});
      throw new PermanentStorageError(
        `nats ${c.server}: object store bucket ${c.bucket} cannot be opened (it must be created beforehand): ${
          (e as Error).message
        }`,
      );
    }
  }

  /** Ends the connection (it is made again by the next call). */
  async close(): Promise<void> {
    const c = this.#conn;
    this.#conn = null;
    if (c) await (await c.catch(() => null))?.nc.close().catch(() => {});
  }

  #key(level: number, min: bigint, max: bigint): string {
    return ltxKey(this.#cfg.path, level, min, max);
  }

  async listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const { os } = await this.#store();
    let infos;
    try {
      infos = await os.list();
    } catch (e) {
      if (/no objects found/i.test((e as Error).message)) return [];
      throw new Error(`nats ${this.location}: list: ${(e as Error).message}`);
    }
    const prefix = ltxLevelDir(this.#cfg.path, level) + "/";
    const out: ReplicaFile[] = [];
    for (const i of infos) {
      if (i.deleted || !i.name.startsWith(prefix)) continue;
      const rest = i.name.slice(prefix.length);
      const range = rest.includes("/") ? null : parseLtxFileName(rest);
      if (!range || range.minTXID < seek) continue;
      const h = (i.headers ?? {}) as Record<string, string[] | string>;
      const raw = h[NATS_TIMESTAMP_HEADER];
      const stamped = raw === undefined ? null : parseRFC3339([raw].flat()[0] ?? "");
      out.push({
        level,
        ...range,
        size: i.size,
        createdAt: stamped ?? new Date(i.mtime),
      });
    }
    return out.sort(compareFiles);
  }

  async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const { os } = await this.#store();
    const key = this.#key(level, minTXID, maxTXID);
    const r = await os.get(key);
    if (!r) throw new ReplicaFileNotFoundError(this.location, key);
    r.error.catch(() => {});
    if (!range) return r.data;
    // the object store streams whole objects: skip to the range and stop after it
    let pos = 0;
    const end = range.offset + range.length;
    const reader = r.data.getReader();
    return new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        while (true) {
          if (pos >= end) {
            await reader.cancel().catch(() => {});
            ctrl.close();
            return;
          }
          const { value, done } = await reader.read();
          if (done) {
            ctrl.close();
            return;
          }
          const a = Math.max(range.offset - pos, 0);
          const b = Math.min(end - pos, value.length);
          pos += value.length;
          if (b > a) {
            ctrl.enqueue(value.subarray(a, b));
            return;
          }
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
  }

  async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const { os } = await this.#store();
    const { headers } = await import("@nats-io/nats-core");
    const key = this.#key(level, minTXID, maxTXID);
    const h = headers();
    h.set(NATS_TIMESTAMP_HEADER, formatRFC3339Nano(createdAt));
    let size = 0;
    const counted = data.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctrl) {
          size += chunk.length;
          ctrl.enqueue(chunk);
        },
      }),
    );
    try {
      await os.put({ name: key, headers: h }, counted);
    } catch (e) {
      throw new Error(`nats ${this.location}: put ${key}: ${(e as Error).message}`);
    }
    return { level, minTXID, maxTXID, size, createdAt };
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    if (files.length === 0) return;
    const { os } = await this.#store();
    for (const f of files) {
      const key = this.#key(f.level, f.minTXID, f.maxTXID);
      try {
        await os.delete(key);
      } catch (e) {
        if (/not found/i.test((e as Error).message)) continue;
        throw new Error(`nats ${this.location}: delete ${key}: ${(e as Error).message}`);
      }
    }
  }
}

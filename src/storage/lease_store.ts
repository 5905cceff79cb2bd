/**
 * A tiny compare-and-swap store for one small object, `lock.json` at the
 * replica's root (Litestream's lease object name), on which the replication
 * lease is built (src/replicate/lease.ts).
 *
 * Why a separate capability and not part of ReplicaClient: the client
 * interface stays the dumb file store every backend must implement; only
 * backends that can make a write conditional offer this. The file client uses
 * an exclusive create (link) and an flock-guarded replace; S3 uses
 * `If-None-Match: *` / `If-Match: <etag>` on PutObject. On an S3-compatible
 * server that ignores those headers the store notices (a second create of an
 * existing object succeeds) and says so: the lease is then best effort
 * (read, check, write, read back), which catches two processes started
 * seconds apart but not two started in the same instant.
 */

import { join } from "node:path";
import type { ReplicaClient } from "./client.ts";
import { FileReplicaClient } from "./file_client.ts";
import { S3ReplicaClient } from "./s3_client.ts";
import { ForwardingReplicaClient } from "./forwarding_client.ts";
import { syncDir } from "../fsutil.ts";
import { io, ReplicaIoError } from "./os_error.ts";
import { DEFAULT_MODES, type FileModes } from "./file_modes.ts";

export const LEASE_OBJECT = "lock.json";

export interface LeaseRecord {
  body: string;
  /** Opaque: what a conditional replace must match (an ETag, or the content). */
  version: string;
}

export interface LeaseStore {
  /** Where the lock object is, for messages. */
  readonly location: string;
  /** True when the server enforces the conditions; false when it was seen ignoring them. */
  readonly conditional: boolean;
  read(): Promise<LeaseRecord | null>;
  /** Creates the object unless it exists; its version, or null when it exists. */
  create(body: string): Promise<string | null>;
  /** Replaces the object if it is still at `version`; the new version, or null. */
  replace(body: string, version: string): Promise<string | null>;
  /** Deletes the object if it is still at `version`. */
  remove(version: string): Promise<void>;
}

/** The lease store of a replica, or null when its backend has none (yet). */
export function leaseStoreFor(client: ReplicaClient): LeaseStore | null {
  // a wrapper (a branch's whole view, the restore cache) leases the replica it wraps
  client = ForwardingReplicaClient.innermost(client);
  if (client instanceof FileReplicaClient) {
    const c = client;
    return new FileLeaseStore(c.root, () => c.modes);
  }
  if (client instanceof S3ReplicaClient) return new S3LeaseStore(client);
  return null;
}

/** `<root>/lock.json`; replace and remove hold an flock on `<root>/lock.json.guard`. */
export class FileLeaseStore implements LeaseStore {
  readonly path: string;
  readonly conditional = true;
  /** The replica's file and directory modes (its client's, when it has one). */
  readonly #modes: () => FileModes;

  constructor(root: string, modes: () => FileModes = () => DEFAULT_MODES) {
    this.path = join(root, LEASE_OBJECT);
    this.#modes = modes;
  }

  get location(): string {
    return this.path;
  }

  async read(): Promise<LeaseRecord | null> {
    try {
      const body = await Deno.readTextFile(this.path);
      return { body, version: body };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw new ReplicaIoError("read", this.path, e);
    }
  }

  /** Writes `body` to a new temporary file beside the lease (errors name the lease). */
  #writeTmp(body: string): Promise<string> {
    return io("write", this.path, async () => {
      await Deno.mkdir(join(this.path, ".."), { recursive: true, mode: this.#modes().dir });
      const tmp = `${this.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
      const f = await Deno.open(tmp, { write: true, createNew: true, mode: this.#modes().file });
      try {
        const bytes = new TextEncoder().encode(body);
        let off = 0;
        while (off < bytes.length) off += await f.write(bytes.subarray(off));
        await f.sync();
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw e;
      } finally {
        f.close();
      }
      return tmp;
    });
  }

  async create(body: string): Promise<string | null> {
    const tmp = await this.#writeTmp(body);
    try {
      await Deno.link(tmp, this.path); // fails when it exists: an atomic exclusive create
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) return null;
      throw new ReplicaIoError("create", this.path, e);
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
    await syncDir(join(this.path, ".."));
    return body;
  }

  async #guarded<T>(fn: () => Promise<T>): Promise<T> {
    const guard = await io("lock", `${this.path}.guard`, async () => {
      await Deno.mkdir(join(this.path, ".."), { recursive: true, mode: this.#modes().dir });
      const g = await Deno.open(`${this.path}.guard`, {
        write: true,
        create: true,
        mode: this.#modes().file,
      });
      try {
        await g.lock(true);
      } catch (e) {
        g.close();
        throw e;
      }
      return g;
    });
    try {
      return await fn();
    } finally {
      guard.close(); // releases the lock
    }
  }

  replace(body: string, version: string): Promise<string | null> {
    return this.#guarded(async () => {
      const cur = await this.read();
      if (!cur || cur.version !== version) return null;
      const tmp = await this.#writeTmp(body);
      try {
        await Deno.rename(tmp, this.path);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw new ReplicaIoError("replace", this.path, e);
      }
      await syncDir(join(this.path, ".."));
      return body;
    });
  }

  remove(version: string): Promise<void> {
    return this.#guarded(async () => {
      const cur = await this.read();
      if (cur && cur.version === version) await Deno.remove(this.path).catch(() => {});
    });
  }
}

interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function status(e: unknown): number | undefined {
  return (e as SdkError | null)?.$metadata?.httpStatusCode;
}

/** " (HTTP 403 AccessDenied)", or "" when the error carries no status. */
function httpStatus(e: unknown): string {
  const s = status(e);
  const code = (e as SdkError | null)?.Code ?? (e as SdkError | null)?.name;
  if (s === undefined) return code && code !== "Error" ? ` (${code})` : "";
  return ` (HTTP ${s}${code && code !== "Error" ? ` ${code}` : ""})`;
}

function conflict(e: unknown): boolean {
  const s = status(e);
  const code = (e as SdkError | null)?.Code ?? (e as SdkError | null)?.name;
  return s === 412 || s === 409 || code === "PreconditionFailed" ||
    code === "ConditionalRequestConflict";
}

/** `<path>/lock.json` with conditional PutObject. */
export class S3LeaseStore implements LeaseStore {
  readonly client: S3ReplicaClient;
  readonly key: string;
  #conditional = true;
  #probed = false;

  constructor(client: S3ReplicaClient) {
    this.client = client;
    this.key = client.path ? `${client.path}/${LEASE_OBJECT}` : LEASE_OBJECT;
  }

  get location(): string {
    return `s3://${this.client.bucket}/${this.key}`;
  }

  get conditional(): boolean {
    return this.#conditional;
  }

  async read(): Promise<LeaseRecord | null> {
    const sdk = await import("@aws-sdk/client-s3");
    const s3 = await this.client.client();
    try {
      const out = await s3.send(
        new sdk.GetObjectCommand({ Bucket: this.client.bucket, Key: this.key }),
      );
      const body = await out.Body!.transformToString();
      return { body, version: out.ETag ?? body };
    } catch (e) {
      if (status(e) === 404 && (e as SdkError).Code !== "NoSuchBucket") return null;
      throw new Error(
        `lease ${this.location}: GetObject failed${httpStatus(e)}: ${(e as Error).message}`,
      );
    }
  }

  async #put(
    body: string,
    cond: { IfNoneMatch?: string; IfMatch?: string },
  ): Promise<string | null> {
    const sdk = await import("@aws-sdk/client-s3");
    const s3 = await this.client.client();
    try {
      const out = await s3.send(
        new sdk.PutObjectCommand({
          Bucket: this.client.bucket,
          Key: this.key,
          Body: new TextEncoder().encode(body),
          ContentType: "application/json",
          ...cond,
        }),
      );
      return out.ETag ?? body;
    } catch (e) {
      if (conflict(e) || (cond.IfMatch && status(e) === 404)) return null;
      throw new Error(
        `lease ${this.location}: PutObject failed${httpStatus(e)}: ${(e as Error).message}`,
      );
    }
  }

  async create(body: string): Promise<string | null> {
    const v = await this.#put(body, { IfNoneMatch: "*" });
    if (v !== null && !this.#probed) {
      // Does the server enforce If-None-Match? A second create of the object
      // just written must be refused; a server that ignores the header
      // rewrites the same bytes instead (harmless) and the lease is best effort.
      this.#probed = true;
      const again = await this.#put(body, { IfNoneMatch: "*" });
      this.#conditional = again === null;
      return again ?? v;
    }
    return v;
  }

  async replace(body: string, version: string): Promise<string | null> {
    if (!this.#conditional) {
      const cur = await this.read();
      if (!cur || cur.version !== version) return null;
    }
    return await this.#put(body, { IfMatch: version });
  }

  async remove(version: string): Promise<void> {
    const cur = await this.read();
    if (!cur || cur.version !== version) return;
    const sdk = await import("@aws-sdk/client-s3");
    const s3 = await this.client.client();
    await s3.send(new sdk.DeleteObjectCommand({ Bucket: this.client.bucket, Key: this.key }))
      .catch(() => {});
  }
}

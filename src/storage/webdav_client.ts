/**
 * A replica on a WebDAV server, laid out as Litestream's webdav replicas:
 * `<path>/ltx/<level>/<min>-<max>.ltx`. Requests go over fetch with HTTP
 * basic authentication; retried on 5xx, 429 and dropped connections.
 *
 * - Listing: PROPFIND (depth 1) of the level's collection; sizes from
 *   `getcontentlength`; the creation time from strata's dead property
 *   `created` (namespace STRATA_NS, RFC 3339 with milliseconds) when the
 *   server keeps dead properties, else `getlastmodified` (the upload time, to
 *   the second, as Litestream reads it).
 * - Writing: the file is read once (up to 8 MiB in memory, larger through a
 *   temporary file) so that its Content-Length is known and a retry can send
 *   it again; PUT under a temporary name, PROPPATCH its creation time, then
 *   MOVE onto the final name: a file is visible only once complete. Missing
 *   collections are made (MKCOL) on the way.
 * - Reading: GET; a byte range with a Range header, read whole (callers ask
 *   for small ones), or cut from a plain GET when the server does not answer
 *   the range properly.
 */

import { XMLParser } from "fast-xml-parser";
import { parseLtxFileName } from "../ltx/names.ts";
import type { WebDavReplicaConfig } from "../config/webdav_config.ts";
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
  replayable,
  withRetry,
} from "./remote_util.ts";

/** strata's namespace for the dead property holding a file's creation time. */
export const STRATA_NS = "https://strata.dev/ns/webdav/";

const MEMORY_LIMIT = 8 << 20;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

const retryable = (e: unknown) =>
  !(e instanceof PermanentStorageError) && !(e instanceof ReplicaFileNotFoundError) &&
  (!(e instanceof HttpError) || e.status >= 500 || e.status === 429);

export class WebDavReplicaClient implements ReplicaClient {
  readonly type = "webdav";
  readonly location: string;
  readonly #base: string;
  readonly #root: string;
  readonly #auth: string | null;
  readonly #xml = new XMLParser({ removeNSPrefix: true, parseTagValue: false });

  constructor(cfg: WebDavReplicaConfig) {
    this.#base = cfg.url.replace(/\/+$/, "");
    this.#root = cfg.path || "/";
    this.location = `${this.#base}${this.#root}`;
    this.#auth = cfg.username !== undefined
      ? "Basic " + btoa(unescape(encodeURIComponent(`${cfg.username}:${cfg.password ?? ""}`)))
      : null;
  }

  #url(key: string): string {
    return this.#base + key.split("/").map((s) => encodeURIComponent(s)).join("/");
  }

  /** One request; statuses other than `ok` become errors naming the operation and key. */
  async #send(
    method: string,
    key: string,
    init: {
      headers?: Record<string, string>;
      body?: BodyInit | null;
      ok?: number[];
      /** How long until the response's head arrives (a PUT's includes sending its body). */
      timeoutMs?: number;
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.#auth) headers["Authorization"] = this.#auth;
    let res: Response;
    // the time limit covers the request until its answer starts, never a body being read
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error("timed out waiting for the server")),
      init.timeoutMs ?? 120_000,
    );
    try {
      res = await fetch(this.#url(key), { method, headers, body: init.body, signal: abort.signal });
    } catch (e) {
      throw new Error(`webdav ${method} ${this.#base}${key}: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    if ((init.ok ?? [200, 201, 204, 206, 207]).includes(res.status)) return res;
    await res.body?.cancel();
    const what = `webdav ${method} ${this.#base}${key}: HTTP ${res.status}`;
    if (res.status === 401 || res.status === 403) {
      throw new PermanentStorageError(`${what} (check webdav-username and webdav-password)`);
    }
    if (res.status === 404) throw new ReplicaFileNotFoundError(this.location, key);
    throw new HttpError(res.status, what);
  }

  #retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(`webdav ${what}`, fn, retryable);
  }

  async listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const dir = ltxLevelDir(this.#root, level) + "/";
    const body = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:s="${STRATA_NS}"><d:prop><d:getcontentlength/><d:getlastmodified/><d:resourcetype/><s:created/></d:prop></d:propfind>`;
    let text: string;
    try {
      text = await this.#retry(`list ${dir}`, async () => {
        const res = await this.#send("PROPFIND", dir, {
          headers: { Depth: "1", "Content-Type": "application/xml; charset=utf-8" },
          body,
        });
        return await res.text();
      });
    } catch (e) {
      if (e instanceof ReplicaFileNotFoundError) return []; // the level was never written
      throw e;
    }
    const out: ReplicaFile[] = [];
    const doc = this.#xml.parse(text) as { multistatus?: { response?: unknown } };
    const responses = [doc.multistatus?.response ?? []].flat() as Record<string, unknown>[];
    for (const r of responses) {
      let href: string;
      try {
        href = decodeURIComponent(String(r.href ?? ""));
      } catch {
        continue; // not a name strata writes
      }
      const name = href.replace(/\/+$/, "").split("/").pop() ?? "";
      const range = parseLtxFileName(name);
      if (!range || range.minTXID < seek) continue;
      const props: Record<string, unknown> = {};
      for (const ps of [r.propstat ?? []].flat() as Record<string, unknown>[]) {
        if (!/\s200\s/.test(` ${String(ps.status ?? "")} `)) continue;
        Object.assign(props, ps.prop as Record<string, unknown>);
      }
      const rt = props.resourcetype;
      if (rt && typeof rt === "object" && "collection" in rt) continue;
      const created = typeof props.created === "string" ? parseRFC3339(props.created.trim()) : null;
      const modified = typeof props.getlastmodified === "string"
        ? new Date(props.getlastmodified)
        : null;
      const createdAt = created ?? (modified && !isNaN(modified.getTime()) ? modified : null);
      const size = Number(props.getcontentlength);
      // a file without a time or a size would be misplanned: refused rather than guessed
      if (!createdAt || !Number.isSafeInteger(size) || size < 0) {
        throw new Error(
          `webdav ${this.location}: the server gives no ${
            createdAt ? "size" : "modification time"
          } for ${name}`,
        );
      }
      out.push({ level, ...range, size, createdAt });
    }
    return out.sort(compareFiles);
  }

  async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const key = ltxKey(this.#root, level, minTXID, maxTXID);
    if (range) {
      // a range is read whole within the retry (callers ask for small ones: headers, trailers);
      // a server that breaks off a ranged answer gets the plain GET below instead
      const part = await this.#retry(`read ${key}`, async () => {
        const res = await this.#send("GET", key, {
          headers: { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` },
        });
        if (res.status !== 206) {
          await res.body?.cancel();
          return null;
        }
        try {
          return new Uint8Array(await res.arrayBuffer());
        } catch {
          return null;
        }
      });
      if (part && part.length === range.length) return ReadableStream.from([part]);
    }
    const res = await this.#retry(`read ${key}`, () => this.#send("GET", key));
    const body = res.body ?? ReadableStream.from([]);
    if (!range) return body;
    // the server ignored the Range: cut the part asked for out of the whole file
    let pos = 0;
    const end = range.offset + range.length;
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctrl) {
          const a = Math.max(range.offset - pos, 0);
          const b = Math.min(end - pos, chunk.length);
          if (b > a) ctrl.enqueue(chunk.subarray(a, b));
          pos += chunk.length;
        },
      }),
    );
  }

  async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const key = ltxKey(this.#root, level, minTXID, maxTXID);
    const tmp = `${key}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    const src = await replayable(data, MEMORY_LIMIT);
    try {
      const put = async () => {
        const bytes = src.bytes();
        return await this.#send("PUT", tmp, {
          // sending the body counts against the limit: 2 minutes plus 4 s per MiB
          timeoutMs: 120_000 + Math.ceil(src.size / (1 << 20)) * 4_000,
          headers: {
            "Content-Length": String(src.size),
            "Content-Type": "application/octet-stream",
          },
          body: (bytes ?? await src.open()) as BodyInit,
          ok: [200, 201, 204],
        });
      };
      await this.#retry(`write ${key}`, async () => {
        try {
          await put();
        } catch (e) {
          // a missing collection (404, or 409 Conflict as RFC 4918 says): make it, then again
          if (
            !(e instanceof ReplicaFileNotFoundError || (e instanceof HttpError && e.status === 409))
          ) {
            throw e;
          }
          await this.#mkcols(ltxLevelDir(this.#root, level));
          await put();
        }
      });
      await this.#setCreated(tmp, createdAt);
      await this.#retry(`move ${key}`, () =>
        this.#send("MOVE", tmp, {
          headers: { Destination: this.#url(key), Overwrite: "T" },
          ok: [201, 204],
        }));
    } catch (e) {
      await this.#send("DELETE", tmp, { ok: [200, 204, 404] }).catch(() => {});
      throw e;
    } finally {
      await src.close();
    }
    return { level, minTXID, maxTXID, size: src.size, createdAt };
  }

  /** Makes each collection on the way to `dir` (405: it exists). */
  async #mkcols(dir: string): Promise<void> {
    const parts = dir.split("/").filter((p) => p !== "");
    let at = "";
    for (const p of parts) {
      at += `/${p}`;
      await this.#retry(`make ${at}`, () => this.#send("MKCOL", at + "/", { ok: [201, 405] }));
    }
  }

  /** Records the creation time as a dead property; servers without them keep the upload time. */
  async #setCreated(key: string, createdAt: Date): Promise<void> {
    const body = `<?xml version="1.0" encoding="utf-8"?>
<d:propertyupdate xmlns:d="DAV:" xmlns:s="${STRATA_NS}"><d:set><d:prop><s:created>${
      formatRFC3339Nano(createdAt)
    }</s:created></d:prop></d:set></d:propertyupdate>`;
    await this.#send("PROPPATCH", key, {
      headers: { "Content-Type": "application/xml; charset=utf-8" },
      body,
      ok: [200, 207],
    }).then((r) => r.body?.cancel()).catch(() => {});
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    for (const f of files) {
      const key = ltxKey(this.#root, f.level, f.minTXID, f.maxTXID);
      await this.#retry(`delete ${key}`, () => this.#send("DELETE", key, { ok: [200, 204, 404] }));
    }
  }
}

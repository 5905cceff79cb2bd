/**
 * The `sftp` replica client, on npm `ssh2` (loaded on first use). Layout as
 * Litestream v0.5's sftp client: `<path>/ltx/<level>/<min>-<max>.ltx`, written
 * to `<file>.<random>.tmp` then renamed, the creation time kept as the file's
 * mtime (SFTP v3 times are whole seconds, so sub-second parts are dropped, as
 * Litestream's are). One SSH connection per client, opened lazily and opened
 * again after a connection error; reads and writes are pipelined.
 */

import { DEFAULT_MODES, type FileModes, modesFor } from "./file_modes.ts";
import { Buffer } from "node:buffer";
import { parseLtxFileName } from "../ltx/names.ts";
import type { SftpReplicaConfig } from "../config/sftp_config.ts";
import {
  type ByteRange,
  compareFiles,
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "./client.ts";
import {
  checkConfiguredKey,
  checkKnownHosts,
  defaultKnownHostsFiles,
  type HostKeyVerdict,
  loadKnownHosts,
} from "./known_hosts.ts";
import {
  DEFAULT_RETRY,
  forEachLimited,
  Limiter,
  ltxKey,
  ltxLevelDir,
  PermanentStorageError,
  replayable,
  type RetryOptions,
  withRetry,
} from "./remote_util.ts";
import { log } from "../log.ts";

// The few parts of ssh2's API used here (it ships no types).
type Cb<T = void> = (err: SftpError | undefined | null, v: T) => void;
interface SftpError extends Error {
  code?: number | string;
  level?: string;
}
interface Attrs {
  mode: number;
  size: number;
  mtime: number;
  atime: number;
}
interface Sftp {
  _extensions: Record<string, string>;
  open(path: string, flags: string, cb: Cb<Buffer>): void;
  open(path: string, flags: string, attrs: { mode: number }, cb: Cb<Buffer>): void;
  close(handle: Buffer, cb: Cb): void;
  read(handle: Buffer, buf: Buffer, off: number, len: number, pos: number, cb: Cb<number>): void;
  write(handle: Buffer, buf: Buffer, off: number, len: number, pos: number, cb: Cb): void;
  readdir(path: string, cb: Cb<{ filename: string; attrs: Attrs }[]>): void;
  stat(path: string, cb: Cb<Attrs>): void;
  mkdir(path: string, attrs: { mode: number }, cb: Cb): void;
  unlink(path: string, cb: Cb): void;
  rename(from: string, to: string, cb: Cb): void;
  utimes(path: string, atime: number, mtime: number, cb: Cb): void;
  ext_openssh_rename(from: string, to: string, cb: Cb): void;
  ext_openssh_fsync(handle: Buffer, cb: Cb): void;
  end(): void;
}
interface SshClient {
  on(ev: string, fn: (...a: unknown[]) => void): SshClient;
  once(ev: string, fn: (...a: unknown[]) => void): SshClient;
  connect(cfg: Record<string, unknown>): void;
  sftp(cb: Cb<Sftp>): void;
  end(): void;
  setNoDelay(on: boolean): void;
}

// SFTP status codes (draft-ietf-secsh-filexfer-02).
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const FAILURE = 4;
const NO_CONNECTION = 6;
const CONNECTION_LOST = 7;
const OP_UNSUPPORTED = 8;

/** Bytes per SFTP read/write request (OpenSSH accepts up to 255 KiB). */
const CHUNK = 64 * 1024;
/** Requests in flight per read or write stream. */
const WINDOW = 8;
/** Uploads up to this size are held in memory for retries; larger ones go through a temporary file. */
const REPLAY_IN_MEMORY = 8 * 1024 * 1024;

export interface SftpClientOptions {
  retry?: RetryOptions;
  /** Concurrent operations (listing, opening, writing, deleting) per client. */
  concurrency?: number;
  /** known_hosts files consulted when no `host-key` is configured. */
  knownHostsFiles?: string[];
  connectTimeoutMs?: number;
}

interface Session {
  ssh: SshClient;
  sftp: Sftp;
  dead: boolean;
  madeDirs: Set<string>;
}

function p<T = void>(fn: (cb: Cb<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function isConnectionError(e: unknown): boolean {
  const err = e as SftpError;
  if (!err || typeof err !== "object") return false;
  if (err.code === NO_CONNECTION || err.code === CONNECTION_LOST) return true;
  if (err.level === "client-socket" || err.level === "client-timeout") return true;
  if (
    typeof err.code === "string" &&
    /^(ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)/.test(err.code)
  ) {
    return true;
  }
  return /No response from server|Not connected|Channel (not open|closed)|connection (lost|closed|reset)|socket hang up|Timed out/i
    .test(err.message ?? "");
}

export class SftpReplicaClient implements ReplicaClient {
  readonly type = "sftp";
  readonly cfg: SftpReplicaConfig;
  readonly #retry: RetryOptions;
  readonly #limit: Limiter;
  readonly #knownHostsFiles: string[];
  readonly #connectTimeoutMs: number;
  #session: Promise<Session> | null = null;
  /** Modes of the files and directories written (see restrictModes). */
  modes: FileModes = DEFAULT_MODES;

  constructor(cfg: SftpReplicaConfig, opts: SftpClientOptions = {}) {
    this.cfg = cfg;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    this.#limit = new Limiter(opts.concurrency ?? 8);
    this.#knownHostsFiles = opts.knownHostsFiles ?? defaultKnownHostsFiles();
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 20_000;
  }

  get location(): string {
    const hp = this.cfg.port === 22 ? this.cfg.host : `${this.cfg.host}:${this.cfg.port}`;
    return `sftp://${this.cfg.user}@${hp}${
      this.cfg.path.startsWith("/") ? "" : "/~/"
    }${this.cfg.path}`;
  }

  /** Writes files and directories no more readable than a database of mode `dbMode`. */
  restrictModes(dbMode: number): void {
    this.modes = modesFor(dbMode);
  }

  /** Closes the SSH connection (a later call connects again). */
  async close(): Promise<void> {
    const s = this.#session;
    this.#session = null;
    if (!s) return;
    const sess = await s.catch(() => null);
    if (sess) this.#drop(sess);
  }

  #drop(s: Session) {
    if (s.dead) return;
    s.dead = true;
    try {
      s.sftp.end();
    } catch { /* closed */ }
    try {
      s.ssh.end();
    } catch { /* closed */ }
  }

  async #connect(): Promise<Session> {
    const { Client } =
      ((await import("ssh2")) as unknown as { default: { Client: new () => SshClient } })
        .default;
    const where = `${this.cfg.user}@${this.cfg.host}:${this.cfg.port}`;
    let verdict: HostKeyVerdict = { ok: false, reason: "no host key was checked" };
    const known = this.cfg.hostKey ? [] : await loadKnownHosts(this.#knownHostsFiles);
    const auth: Record<string, unknown> = {};
    if (this.cfg.password) auth.password = this.cfg.password;
    if (this.cfg.keyPath) {
      try {
        auth.privateKey = await Deno.readTextFile(this.cfg.keyPath);
      } catch (e) {
        throw new PermanentStorageError(
          `sftp ${where}: cannot read "key-path" ${this.cfg.keyPath}: ${(e as Error).message}`,
        );
      }
    }
    if (!auth.password && !auth.privateKey) {
      // As ssh(1) would: the agent, else the first default identity file.
      const sock = Deno.env.get("SSH_AUTH_SOCK");
      if (sock) auth.agent = sock;
      else {
        const home = Deno.env.get("HOME") ?? "";
        for (const f of ["id_ed25519", "id_ecdsa", "id_rsa"]) {
          const key = await Deno.readTextFile(`${home}/.ssh/${f}`).catch(() => null);
          if (key) {
            auth.privateKey = key;
            break;
          }
        }
      }
      if (!auth.agent && !auth.privateKey) {
        throw new PermanentStorageError(
          `sftp ${where}: no credentials: set "password" or "key-path", run an ssh-agent ` +
            `(SSH_AUTH_SOCK), or have ~/.ssh/id_ed25519, id_ecdsa or id_rsa`,
        );
      }
    }
    const ssh = new Client();
    const session = await new Promise<Session>((resolve, reject) => {
      let settled = false;
      ssh.on("error", (...a: unknown[]) => {
        const e = a[0] as SftpError;
        if (!settled) {
          settled = true;
          reject(this.#connectError(where, e, verdict));
        }
      });
      ssh.once("ready", () => {
        ssh.setNoDelay(true); // small request/response pairs: no Nagle delays
        ssh.sftp((e, sftp) => {
          if (settled) return;
          settled = true;
          if (e) {
            ssh.end();
            reject(
              new PermanentStorageError(
                `sftp ${where}: the server refused the sftp subsystem: ${e.message}`,
              ),
            );
            return;
          }
          resolve({ ssh, sftp, dead: false, madeDirs: new Set() });
        });
      });
      ssh.connect({
        host: this.cfg.host,
        port: this.cfg.port,
        username: this.cfg.user,
        readyTimeout: this.#connectTimeoutMs,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        ...auth,
        hostVerifier: (key: Buffer) => {
          const blob = new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
          verdict = this.cfg.hostKey
            ? checkConfiguredKey(where, this.cfg.hostKey, blob)
            : checkKnownHosts(
              where,
              this.cfg.host,
              this.cfg.port,
              known,
              this.#knownHostsFiles,
              blob,
            );
          return verdict.ok;
        },
      });
    });
    const onGone = () => {
      session.dead = true;
    };
    ssh.on("close", onGone);
    ssh.on("end", onGone);
    ssh.on("error", (...a: unknown[]) => {
      session.dead = true;
      log("warn", "sftp connection error", {
        replica: this.location,
        error: (a[0] as Error)?.message,
      });
    });
    return session;
  }

  #connectError(where: string, e: SftpError, verdict: HostKeyVerdict): Error {
    if (!verdict.ok && /verification failed|Host denied/i.test(e.message)) {
      return new PermanentStorageError(`sftp: ${verdict.reason}`);
    }
    if (e.level === "client-authentication") {
      return new PermanentStorageError(
        `sftp ${where}: authentication failed (${e.message}); check "user", "password" and "key-path"`,
        { cause: e },
      );
    }
    if (/Cannot parse privateKey|Encrypted private OpenSSH key/i.test(e.message)) {
      return new PermanentStorageError(
        `sftp ${where}: "key-path" ${this.cfg.keyPath}: ${e.message}`,
      );
    }
    const err = new Error(`sftp ${where}: cannot connect: ${e.message}`, { cause: e }) as SftpError;
    err.level = e.level ?? "client-socket";
    err.code = e.code;
    return err;
  }

  async #get(): Promise<Session> {
    if (this.#session) {
      const cur = this.#session;
      const s = await cur.catch(() => null);
      if (s && !s.dead) return s;
      if (this.#session === cur) this.#session = null;
    }
    const next = this.#connect();
    this.#session = next;
    try {
      return await next;
    } catch (e) {
      if (this.#session === next) this.#session = null;
      throw e;
    }
  }

  /** One operation with retries; a connection error drops the session so the next try reconnects. */
  #op<T>(what: string, key: string, fn: (s: Session) => Promise<T>): Promise<T> {
    return withRetry(
      `sftp ${what} ${key}`,
      async () => {
        const s = await this.#get();
        try {
          return await fn(s);
        } catch (e) {
          if (isConnectionError(e)) this.#drop(s);
          throw e;
        }
      },
      (e) => !(e instanceof PermanentStorageError) && isConnectionError(e),
      this.#retry,
    ).catch((e) => {
      throw this.#explain(what, key, e);
    });
  }

  #explain(what: string, key: string, e: unknown): Error {
    if (e instanceof PermanentStorageError || e instanceof ReplicaFileNotFoundError) return e;
    const err = e as SftpError;
    const status = typeof err?.code === "number" ? ` (SFTP status ${err.code})` : "";
    const msg = `sftp ${this.cfg.user}@${this.cfg.host}:${this.cfg.port}: ${what} ${key}: ${
      err?.message ?? String(e)
    }${status}`;
    if (err?.code === PERMISSION_DENIED) return new PermanentStorageError(msg, { cause: e });
    return new Error(msg, { cause: e });
  }

  #dir(level: number): string {
    return ltxLevelDir(this.cfg.path, level);
  }

  listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const dir = this.#dir(level);
    return this.#limit.run(() =>
      this.#op("list", dir, async (s) => {
        let entries: { filename: string; attrs: Attrs }[];
        try {
          entries = await p((cb) => s.sftp.readdir(dir, cb));
        } catch (e) {
          if ((e as SftpError).code === NO_SUCH_FILE) return [];
          throw e;
        }
        const out: ReplicaFile[] = [];
        for (const e of entries) {
          if ((e.attrs.mode & 0o170000) !== 0o100000) continue; // regular files only
          const r = parseLtxFileName(e.filename);
          if (!r || r.minTXID < seek) continue;
          out.push({ level, ...r, size: e.attrs.size, createdAt: new Date(e.attrs.mtime * 1000) });
        }
        return out.sort(compareFiles);
      })
    );
  }

  async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const path = ltxKey(this.cfg.path, level, minTXID, maxTXID);
    const start = range?.offset ?? 0;
    const end = range ? range.offset + range.length : Infinity;
    const openHandle = () =>
      this.#limit.run(() =>
        this.#op("open", path, async (s) => {
          try {
            return { s, h: await p<Buffer>((cb) => s.sftp.open(path, "r", cb)) };
          } catch (e) {
            if ((e as SftpError).code === NO_SUCH_FILE) {
              throw new ReplicaFileNotFoundError(this.location, path);
            }
            throw e;
          }
        })
      );
    let cur: { s: Session; h: Buffer } | null = await openHandle();
    let pos = start; // next byte to deliver
    let issued = start; // next byte to request
    let eof = false;
    let retries = 0;
    const pending: { at: number; len: number; buf: Buffer; done: Promise<number> }[] = [];
    const closeHandle = () => {
      const c = cur;
      cur = null;
      if (c && !c.s.dead) c.s.sftp.close(c.h, () => {});
    };
    const fill = () => {
      while (cur && !eof && pending.length < WINDOW && issued < end) {
        const len = Math.min(CHUNK, end - issued);
        const buf = Buffer.allocUnsafe(len);
        const at = issued;
        const { s, h } = cur;
        const done = p<number>((cb) => s.sftp.read(h, buf, 0, len, at, cb));
        done.catch(() => {}); // handled when awaited
        pending.push({ at, len, buf, done });
        issued += len;
      }
    };
    return new ReadableStream<Uint8Array>({
      pull: async (ctrl) => {
        for (;;) {
          if (pos >= end || (eof && pending.length === 0)) {
            closeHandle();
            ctrl.close();
            return;
          }
          fill();
          const head = pending.shift();
          if (!head) {
            closeHandle();
            ctrl.close();
            return;
          }
          let n: number;
          try {
            n = await head.done;
          } catch (e) {
            // Resume from `pos` on a fresh connection (files never change once written).
            if (!isConnectionError(e) || ++retries >= this.#retry.attempts) {
              closeHandle();
              throw this.#explain("read", path, e);
            }
            if (cur) this.#drop(cur.s);
            pending.length = 0;
            cur = null;
            cur = await openHandle();
            issued = pos;
            continue;
          }
          if (n === 0) {
            eof = true;
            pending.length = 0;
            continue;
          }
          if (n < head.len) {
            // A short read: ask for the rest again before anything later.
            pending.length = 0;
            issued = head.at + n;
          }
          pos = head.at + n;
          ctrl.enqueue(new Uint8Array(head.buf.buffer, head.buf.byteOffset, n));
          return;
        }
      },
      cancel: () => closeHandle(),
    });
  }

  async #mkdirs(s: Session, dir: string): Promise<void> {
    if (s.madeDirs.has(dir)) return;
    const parts = dir.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!d || s.madeDirs.has(d)) continue;
      try {
        await p((cb) => s.sftp.mkdir(d, { mode: this.modes.dir }, cb));
      } catch (e) {
        const st = await p<Attrs>((cb) => s.sftp.stat(d, cb)).catch(() => null);
        if (!st) throw e;
        if ((st.mode & 0o170000) !== 0o040000) {
          throw new PermanentStorageError(
            `sftp ${this.location}: ${d} exists and is not a directory`,
          );
        }
      }
      s.madeDirs.add(d);
    }
  }

  writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const path = ltxKey(this.cfg.path, level, minTXID, maxTXID);
    const dir = this.#dir(level);
    return this.#limit.run(async () => {
      // the whole file first (in memory up to REPLAY_IN_MEMORY, else a temporary file), so
      // a transfer cut by a dropped connection is retried from the start on a new session
      const src = await replayable(data, REPLAY_IN_MEMORY).catch((e) => {
        throw this.#explain("write", path, e);
      });
      let tmp = "";
      try {
        tmp = await this.#op("write", path, async (s) => {
          const t = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
          await this.#mkdirs(s, dir);
          await this.#transfer(s, t, await src.open());
          return t;
        });
      } finally {
        await src.close();
      }
      const size = src.size;
      try {
        const secs = Math.floor(createdAt.getTime() / 1000);
        // errors name `path`, never the temporary name (repeated failures read the same)
        await this.#op(
          "set times of",
          path,
          (s2) => p((cb) => s2.sftp.utimes(tmp, secs, secs, cb)),
        );
        await this.#op("rename into place", path, (s2) => this.#rename(s2, tmp, path));
      } catch (e) {
        await this.#op("remove", path, (s2) => p((cb) => s2.sftp.unlink(tmp, cb))).catch(() => {});
        throw e;
      }
      return { level, minTXID, maxTXID, size, createdAt };
    });
  }

  /** Writes `data` to a new file `tmp` (fsynced where the server can); removes it on failure. */
  async #transfer(s: Session, tmp: string, data: ReadableStream<Uint8Array>): Promise<void> {
    const h = await p<Buffer>((cb) => s.sftp.open(tmp, "wx", { mode: this.modes.file }, cb));
    let handleOpen = true;
    try {
      let size = 0;
      const inFlight: Promise<void>[] = [];
      for await (const chunk of data) {
        for (let off = 0; off < chunk.length; off += CHUNK) {
          const piece = toBuffer(chunk.subarray(off, Math.min(off + CHUNK, chunk.length)));
          const at = size;
          size += piece.length;
          const w = p((cb) => s.sftp.write(h, piece, 0, piece.length, at, cb));
          w.catch(() => {});
          inFlight.push(w);
          if (inFlight.length >= WINDOW) await inFlight.shift();
        }
      }
      await Promise.all(inFlight);
      if (s.sftp._extensions["fsync@openssh.com"]) {
        await p((cb) => s.sftp.ext_openssh_fsync(h, cb)).catch(() => {});
      }
      handleOpen = false;
      await p((cb) => s.sftp.close(h, cb));
    } catch (e) {
      await data.cancel().catch(() => {});
      if (handleOpen && !s.dead) s.sftp.close(h, () => {});
      if (!s.dead) s.sftp.unlink(tmp, () => {});
      throw e;
    }
  }

  /** Replaces `to` atomically with posix-rename@openssh.com; plain SFTP rename cannot overwrite. */
  async #rename(s: Session, from: string, to: string): Promise<void> {
    if (s.sftp._extensions["posix-rename@openssh.com"]) {
      await p((cb) => s.sftp.ext_openssh_rename(from, to, cb));
      return;
    }
    try {
      await p((cb) => s.sftp.rename(from, to, cb));
    } catch (e) {
      const code = (e as SftpError).code;
      if (code !== FAILURE && code !== OP_UNSUPPORTED) throw e;
      // The target exists: without posix-rename the old file must go first.
      await p((cb) => s.sftp.unlink(to, cb)).catch(() => {});
      await p((cb) => s.sftp.rename(from, to, cb));
    }
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    await forEachLimited(files, 8, (f) => {
      const path = ltxKey(this.cfg.path, f.level, f.minTXID, f.maxTXID);
      return this.#limit.run(() =>
        this.#op("delete", path, async (s) => {
          try {
            await p((cb) => s.sftp.unlink(path, cb));
          } catch (e) {
            if ((e as SftpError).code !== NO_SUCH_FILE) throw e;
          }
        })
      );
    });
  }
}

/** The `file` replica client: `<path>/ltx/<level>/<min>-<max>.ltx`, as Litestream v0.5. */

import { join } from "node:path";
import { formatLtxFileName, parseLtxFileName } from "../ltx/mod.ts";
import { syncDir } from "../fsutil.ts";
import { io } from "./os_error.ts";
import { DEFAULT_MODES, type FileModes, modesFor } from "./file_modes.ts";
import type { RawEntry } from "./litestream_v03.ts";
import {
  type ByteRange,
  compareFiles,
  type ReplicaClient,
  type ReplicaFile,
  ReplicaFileNotFoundError,
} from "./client.ts";

export class FileReplicaClient implements ReplicaClient {
  readonly type = "file";
  readonly root: string;
  /** Modes of the files and directories written (see restrictModes). */
  modes: FileModes = DEFAULT_MODES;

  constructor(root: string) {
    this.root = root;
  }

  get location(): string {
    return this.root;
  }

  /** Writes files and directories no more readable than a database of mode `dbMode`. */
  restrictModes(dbMode: number): void {
    this.modes = modesFor(dbMode);
  }

  levelDir(level: number): string {
    return join(this.root, "ltx", String(level));
  }

  filePath(level: number, minTXID: bigint, maxTXID: bigint): string {
    return join(this.levelDir(level), formatLtxFileName(minTXID, maxTXID));
  }

  async listFiles(level: number, seek = 0n): Promise<ReplicaFile[]> {
    const out: ReplicaFile[] = [];
    const dir = this.levelDir(level);
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile) continue;
        const r = parseLtxFileName(e.name);
        if (!r || r.minTXID < seek) continue;
        const st = await Deno.stat(join(dir, e.name)).catch(() => null);
        if (!st) continue; // deleted meanwhile
        out.push({ level, ...r, size: st.size, createdAt: st.mtime ?? new Date(0) });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out.sort(compareFiles);
  }

  async openFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    range?: ByteRange,
  ): Promise<ReadableStream<Uint8Array>> {
    const path = this.filePath(level, minTXID, maxTXID);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ReplicaFileNotFoundError(this.location, path);
      }
      throw e;
    }
    if (!range) return file.readable;
    await file.seek(range.offset, Deno.SeekMode.Start);
    let left = range.length;
    return new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (left <= 0) {
          file.close();
          ctrl.close();
          return;
        }
        const buf = new Uint8Array(Math.min(left, 1 << 16));
        const n = await file.read(buf);
        if (n === null) {
          file.close();
          ctrl.close();
          return;
        }
        left -= n;
        ctrl.enqueue(buf.subarray(0, n));
      },
      cancel() {
        file.close();
      },
    });
  }

  async writeFile(
    level: number,
    minTXID: bigint,
    maxTXID: bigint,
    data: ReadableStream<Uint8Array>,
    createdAt: Date,
  ): Promise<ReplicaFile> {
    const dir = this.levelDir(level);
    const path = this.filePath(level, minTXID, maxTXID);
    // errors name `path` and the reason (ENOSPC, EACCES, …), never the temporary name
    const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    let file: Deno.FsFile | null = null;
    let size = 0;
    try {
      await io(
        "create the directory of",
        path,
        () => Deno.mkdir(dir, { recursive: true, mode: this.modes.dir }),
      );
      file = await io(
        "create",
        path,
        () => Deno.open(tmp, { write: true, createNew: true, mode: this.modes.file }),
      );
      const f = file;
      for await (const chunk of data) {
        await io("write", path, async () => {
          let off = 0;
          while (off < chunk.length) off += await f.write(chunk.subarray(off));
        });
        size += chunk.length;
      }
      await io("write", path, () => f.sync());
      f.close();
      file = null;
      await io("set the time of", path, () => Deno.utime(tmp, createdAt, createdAt));
      await io("rename into place", path, () => Deno.rename(tmp, path));
    } catch (e) {
      try {
        file?.close();
      } catch { /* closed */ }
      await Deno.remove(tmp).catch(() => {});
      // a producer (a merge) must not wait forever on a stream nobody reads
      await data.cancel(e).catch(() => {});
      throw e;
    }
    await syncDir(dir);
    return { level, minTXID, maxTXID, size, createdAt };
  }

  async deleteFiles(files: Pick<ReplicaFile, "level" | "minTXID" | "maxTXID">[]): Promise<void> {
    for (const f of files) {
      await Deno.remove(this.filePath(f.level, f.minTXID, f.maxTXID)).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }

  /** The entries of `dir` under the root (for other layouts, e.g. Litestream v0.3). */
  async listRaw(dir: string): Promise<RawEntry[]> {
    const out: RawEntry[] = [];
    try {
      for await (const e of Deno.readDir(join(this.root, dir))) {
        const st = await Deno.stat(join(this.root, dir, e.name)).catch(() => null);
        if (!st) continue; // deleted meanwhile
        out.push({
          name: `${dir}/${e.name}`,
          isDir: st.isDirectory,
          size: st.size,
          modified: st.mtime ?? new Date(0),
        });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out;
  }

  /** Opens the file at `path` under the root. */
  async openRaw(path: string): Promise<ReadableStream<Uint8Array>> {
    try {
      return (await Deno.open(join(this.root, path))).readable;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ReplicaFileNotFoundError(this.location, join(this.root, path));
      }
      throw e;
    }
  }
}

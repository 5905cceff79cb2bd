/**
 * Restore of a 1 GiB database from a local directory replica (one snapshot)
 * with `strata restore` as a user runs it, against `cp` of the same database
 * file on the same disk. Both outputs are removed and the page cache is warm
 * for both (each reads a file written moments before).
 */

import { join } from "node:path";
import { makeTextDatabase } from "./sample_db.ts";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";

const dir = join(PROJECT_ROOT, ".tmp", "bench");
const MIB = Number(Deno.env.get("RESTORE_BENCH_MIB") ?? 1024);

async function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (r.code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(r.stderr)}`);
  return (performance.now() - t0) / 1000;
}

export async function restoreVsCp(): Promise<{ mib: number; restore: number[]; cp: number[] }> {
  Deno.mkdirSync(dir, { recursive: true });
  const db = join(dir, `text-${MIB}m.db`);
  makeTextDatabase(db, MIB);
  const replica = join(dir, `replica-${MIB}m`);
  const snap = join(replica, "ltx", "9", "0000000000000001-0000000000000001.ltx");
  try {
    Deno.statSync(snap);
  } catch {
    Deno.mkdirSync(join(replica, "ltx", "9"), { recursive: true });
    await timed(Deno.execPath(), [
      "run",
      "-A",
      join(PROJECT_ROOT, "bench/snapshot_bench.ts"),
      "encode",
      db,
      snap,
    ]);
  }
  const out = join(dir, "restored.db");
  const copy = join(dir, "copied.db");
  const restore: number[] = [];
  const cp: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (const p of [out, copy]) await Deno.remove(p).catch(() => {});
    cp.push(await timed("cp", [db, copy]));
    restore.push(
      await timed(Deno.execPath(), [
        "run",
        "-A",
        join(PROJECT_ROOT, "main.ts"),
        "restore",
        "-integrity-check",
        "none",
        "-o",
        out,
        `file://${replica}`,
      ]),
    );
  }
  for (const p of [out, copy]) await Deno.remove(p).catch(() => {});
  return { mib: MIB, restore, cp };
}

if (import.meta.main) console.log(JSON.stringify(await restoreVsCp()));

/**
 * A capture's timestamp must be a moment its state existed: no earlier than
 * the last commit it holds. A restore by time trusts that no file stamped at
 * or before T holds a transaction committed after T. The monitor's clock is
 * injected here so that every time it is read while a capture runs, the app
 * commits another row first-thing after (the worst interleaving a loaded
 * machine can produce); each captured file's stamp must still be at or after
 * every commit it holds.
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Monitor } from "../src/capture/mod.ts";
import { parseLtxFileName } from "../src/ltx/mod.ts";
import { readLocalEnds } from "../src/replicate/positions.ts";
import { WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE } from "../src/sqlite/mod.ts";
import { assert } from "./helpers/assert.ts";

Deno.test("capture stamps: a file's timestamp is never before a commit it holds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-stamp-" });
  const dbPath = join(dir, "app.db");
  const app = new DatabaseSync(dbPath);
  app.exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;");
  app.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)");
  const pageSize = Number(
    (app.prepare("PRAGMA page_size").get() as { page_size: number }).page_size,
  );
  const frameSize = WAL_FRAME_HEADER_SIZE + pageSize;
  const insert = app.prepare("INSERT INTO t (body) VALUES (?)");

  let now = 1_000_000;
  let armed = false;
  /** Per commit made by the clock: its time and the WAL's end after it. */
  const commits: { at: number; walEnd: number }[] = [];
  const walEnd = () => Deno.statSync(dbPath + "-wal").size;
  const clock = () => {
    const t = ++now;
    if (armed && commits.length < 200) {
      insert.run("x".repeat(500));
      commits.push({ at: ++now, walEnd: walEnd() });
    }
    return t;
  };
  const monitor = new Monitor({ dbPath, clock, minCheckpointPageCount: 1_000_000 });
  try {
    await monitor.open();
    for (let round = 0; round < 20; round++) {
      insert.run(`round ${round}`);
      commits.push({ at: ++now, walEnd: walEnd() });
      armed = true;
      monitor.underPressure();
      await monitor.capture();
      armed = false;
    }
    let checked = 0;
    for await (const e of Deno.readDir(monitor.ltxDir)) {
      if (!parseLtxFileName(e.name)) continue;
      const { header } = await readLocalEnds(join(monitor.ltxDir, e.name));
      if (header.walSize === 0n) continue; // the first full copy: stamped when written
      const end = Number(header.walOffset + header.walSize);
      assert(end > WAL_HEADER_SIZE && (end - WAL_HEADER_SIZE) % frameSize === 0, `${e.name} end`);
      for (const c of commits) {
        if (c.walEnd > end) continue; // not in this file
        assert(
          Number(header.timestamp) >= c.at,
          `${e.name} is stamped ${header.timestamp}, before a commit it holds (at ${c.at})`,
        );
        checked++;
      }
    }
    assert(checked >= 20, `commits checked against their files: ${checked}`);
  } finally {
    await monitor.close();
    app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

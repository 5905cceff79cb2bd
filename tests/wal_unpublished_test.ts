/**
 * A writer killed between writing a commit's frames to the WAL and publishing
 * them in the WAL index leaves frames no reader sees; the next writer writes
 * over them, and the last connection's checkpoint leaves them out. strata
 * (a separate process) must capture what SQLite's readers see, never those
 * frames: the replica restores to the database the app can read, byte for
 * byte. The unpublished commit is made by appending a valid frame (correct
 * salts and running checksum) to the WAL of a database an app wrote.
 */

import { join } from "node:path";
import { FileReplicaClient } from "../src/storage/mod.ts";
import { restoreTarget } from "../src/restore/mod.ts";
import {
  parseWalHeader,
  scanWal,
  WAL_FRAME_HEADER_SIZE,
  WAL_HEADER_SIZE,
  walChecksum,
} from "../src/sqlite/mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { digestOf, fileChecksum, Replicating } from "./helpers/strata.ts";
import { createAppDb, waitForReplicaEqual } from "./helpers/live.ts";
import { python } from "./helpers/ops.ts";

/** Appends to `db`'s WAL a valid commit frame that changes the last frame's page. */
async function appendUnpublishedCommit(db: string): Promise<void> {
  const wal = await Deno.readFile(`${db}-wal`);
  const h = parseWalHeader(wal)!;
  const scan = scanWal(
    (o, l) => wal.subarray(o, o + l),
    h,
    WAL_HEADER_SIZE,
    { s0: h.checksum1, s1: h.checksum2 },
  );
  assert(scan.frames.length > 0, "the app's frames are in the WAL");
  const last = scan.frames[scan.frames.length - 1];
  const frameSize = WAL_FRAME_HEADER_SIZE + h.pageSize;
  const frame = wal.slice(last.offset, last.offset + frameSize);
  frame[frameSize - 1] ^= 0xff; // another version of that page
  const dv = new DataView(frame.buffer);
  dv.setUint32(4, scan.commit); // a commit frame
  const ck = walChecksum(
    h.bigEndianChecksum,
    frame,
    WAL_FRAME_HEADER_SIZE,
    frameSize,
    walChecksum(h.bigEndianChecksum, frame, 0, 8, scan.checksum),
  );
  dv.setUint32(16, ck.s0);
  dv.setUint32(20, ck.s1);
  const f = await Deno.open(`${db}-wal`, { write: true });
  try {
    await f.seek(scan.endOffset, Deno.SeekMode.Start);
    await f.write(frame);
  } finally {
    f.close();
  }
}

Deno.test("frames a killed writer never published are not captured: the replica equals what readers see", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-unpublished-" });
  const db = join(dir, "app.db");
  const rep = join(dir, "replica");
  const client = new FileReplicaClient(rep);
  await createAppDb(db);
  const proc = new Replicating([db, `file://${rep}`]);
  try {
    await proc.waitForLog();
    await python(
      `import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
for n in range(20):
    con.execute("INSERT INTO items (name, body, n) VALUES ('w', randomblob(700), ?)", (n,))
con.close()`,
      db,
    );
    await waitForReplicaEqual(client, db, dir);
    await appendUnpublishedCommit(db);
    // the final capture at a clean stop reads the WAL under the write lock
    const out = await proc.stop();
    assertEquals(out.code, 0, out.stderr);
    // strata's connection was the last: its close checkpointed what readers see
    const restored = join(dir, "restored.db");
    await restoreTarget(client, {}, restored, { integrityCheck: "full" });
    assertEquals((await digestOf(restored)).digest, (await digestOf(db)).digest, "rows");
    assertEquals(await fileChecksum(restored), await fileChecksum(db), "database checksum");
  } catch (e) {
    console.error(proc.log);
    throw e;
  } finally {
    await proc.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

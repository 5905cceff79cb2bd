/**
 * Restore of a 1 GiB database from the local S3 server (fauxqs), strata beside
 * Litestream v0.3.13, measured in the same run: each tool replicates the same
 * database to its own bucket (a snapshot), then both restore it, rounds
 * interleaved. S3_RESTORE_BENCH_MIB sets the size (default 1024).
 */

import { join } from "node:path";
import { Readable } from "node:stream";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { startS3Server, TEST_CREDENTIALS } from "../tests/helpers/fauxqs.ts";
import { makeTextDatabase } from "./sample_db.ts";
import {
  ensureLitestream,
  LITESTREAM,
  machine,
  STRATA_RUN_ARGS,
  writeBenchSection,
} from "./report.ts";

const MIB = Number(Deno.env.get("S3_RESTORE_BENCH_MIB") ?? 1024);
const ROUNDS = 3;
const env = { ...TEST_CREDENTIALS, NO_COLOR: "1" };
const STRATA = [Deno.execPath(), ...STRATA_RUN_ARGS];

/** Runs a command with the S3 credentials; its stdout and how long it took. */
async function exec(cmd: string[]): Promise<{ stdout: string; seconds: number }> {
  const t0 = performance.now();
  const r = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  return { stdout: new TextDecoder().decode(r.stdout), seconds: (performance.now() - t0) / 1000 };
}

/** Runs a replicator until `done()` says its snapshot is in the bucket, then stops it cleanly. */
async function replicateOnce(cmd: string[], done: () => Promise<boolean>): Promise<void> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let failure: unknown = null;
  try {
    const deadline = Date.now() + 15 * 60_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`${cmd.join(" ")}: no snapshot after 15 min`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (e) {
    failure = e;
  }
  child.kill("SIGINT");
  const { code } = await child.status;
  const err = await stderr;
  if (failure) throw failure;
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}`);
}

async function* walk(root: string, rel = ""): AsyncGenerator<string> {
  for await (const e of Deno.readDir(join(root, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) yield* walk(root, p);
    else if (e.isFile) yield p;
  }
}

async function main() {
  const lsVersion = await ensureLitestream();
  const dir = await Deno.makeTempDir({ prefix: "strata-s3-restore-bench-" });
  const server = await startS3Server();
  try {
    const db = join(dir, "source.db");
    makeTextDatabase(db, MIB);
    console.log(`database: ${MIB} MiB; replicating with strata…`);
    const size = (await Deno.stat(db)).size;

    const sBucket = await server.createBucket("strata");
    const sUrl = `s3://${sBucket}/db?endpoint=${server.endpoint}&region=us-east-1`;
    const sCfg = join(dir, "strata.yml");
    Deno.writeTextFileSync(sCfg, `dbs:\n  - path: ${db}\n    replicas:\n      - url: ${sUrl}\n`);
    await replicateOnce([...STRATA, "replicate", "-config", sCfg], async () => {
      const { stdout } = await exec([...STRATA, "ltx", "-level", "all", sUrl]);
      return /^\d+\t0000000000000001\t/m.test(stdout);
    });

    // Litestream v0.3.13's multipart snapshot upload fails on fauxqs (InvalidPart), so it
    // replicates to a directory and its files are put at the same keys under the bucket: the
    // v0.3 layout is the same on both, and its restore then reads S3 as it would anywhere
    console.log("replicating with Litestream…");
    const lDir = join(dir, "litestream-replica");
    const lFileCfg = join(dir, "litestream-file.yml");
    Deno.writeTextFileSync(
      lFileCfg,
      `dbs:\n  - path: ${db}\n    replicas:\n      - path: ${lDir}\n`,
    );
    await replicateOnce([LITESTREAM, "replicate", "-config", lFileCfg], async () => {
      const { stdout } = await exec([LITESTREAM, "snapshots", "-config", lFileCfg, db]);
      return stdout.trim().split("\n").length > 1;
    });
    // Litestream adds its own tables to the database it replicates
    const lSize = (await Deno.stat(db)).size;
    const lBucket = await server.createBucket("litestream");
    const s3 = new S3Client({
      endpoint: server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: {
        accessKeyId: TEST_CREDENTIALS.LITESTREAM_ACCESS_KEY_ID,
        secretAccessKey: TEST_CREDENTIALS.LITESTREAM_SECRET_ACCESS_KEY,
      },
    });
    for await (const f of walk(lDir)) {
      const file = await Deno.open(join(lDir, f));
      await new Upload({
        client: s3,
        params: { Bucket: lBucket, Key: `db/${f}`, Body: Readable.fromWeb(file.readable as never) },
      }).done();
    }
    s3.destroy();
    const lCfg = join(dir, "litestream.yml");
    Deno.writeTextFileSync(
      lCfg,
      `dbs:\n  - path: ${db}\n    replicas:\n      - type: s3\n        bucket: ${lBucket}\n` +
        `        path: db\n        endpoint: ${server.endpoint}\n        region: us-east-1\n` +
        `        force-path-style: true\n`,
    );

    const strataTimes: number[] = [];
    const litestreamTimes: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const a = join(dir, `strata-${i}.db`);
      const b = join(dir, `litestream-${i}.db`);
      strataTimes.push((await exec([...STRATA, "restore", "-o", a, "-no-progress", sUrl])).seconds);
      litestreamTimes.push(
        (await exec([LITESTREAM, "restore", "-config", lCfg, "-o", b, db])).seconds,
      );
      for (const [p, want] of [[a, size], [b, lSize]] as const) {
        const got = (await Deno.stat(p)).size;
        if (got !== want) throw new Error(`${p}: ${got} bytes, the source had ${want}`);
        await Deno.remove(p);
      }
      console.log(
        `round ${i + 1}: strata ${strataTimes[i].toFixed(2)} s, litestream ${
          litestreamTimes[i].toFixed(2)
        } s`,
      );
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const ratio = median(strataTimes) / median(litestreamTimes);
    const date = new Date().toISOString().slice(0, 10);
    const md =
      `## ${date} — restore of a ${MIB} MiB database from S3 beside Litestream ${lsVersion} (issue 5)

Machine: ${machine()}. Run with \`deno run -A bench/s3_restore_bench.ts\` (part of \`deno task
bench\`). One ${MIB} MiB text-like database, replicated by each tool (a snapshot) to its own bucket on
the same local S3 server (fauxqs, in memory), then restored by each, rounds interleaved; the
restores' sizes are checked. (Litestream's own multipart snapshot upload fails on fauxqs, so its
replica is written to a directory and put into the bucket under the same keys.) strata runs from source (\`deno run\`; \`restore\` verifies every
checksum and runs quick_check), Litestream is the released binary (no checksums).

| restore from S3 (s) | ${strataTimes.map((_, i) => `round ${i + 1}`).join(" | ")} | median |
| --- | ${strataTimes.map(() => "---").join(" | ")} | --- |
| strata | ${strataTimes.map((t) => t.toFixed(2)).join(" | ")} | ${median(strataTimes).toFixed(2)} |
| Litestream ${lsVersion} | ${litestreamTimes.map((t) => t.toFixed(2)).join(" | ")} | ${
        median(litestreamTimes).toFixed(2)
      } |

strata / Litestream = ${ratio.toFixed(2)} (target ≤ 0.8: ${ratio <= 0.8 ? "met" : "not met"}).
`;
    console.log("\n" + md);
    if (MIB >= 1024) await writeBenchSection("s3-restore-bench", md);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();

/**
 * S3 requests per hour, strata beside Litestream v0.3.13, on the same
 * workload and the same local S3 server (fauxqs): two databases, each written
 * by its own app process at 10 commits/s, one replicated by strata and one by
 * Litestream, both with their default settings (1 s sync interval), each
 * through its own counting proxy. Runs REQUESTS_BENCH_SECONDS (default 3600).
 */

import { join } from "node:path";
import { PROJECT_ROOT } from "../tests/helpers/vectors.ts";
import { startS3Server, TEST_CREDENTIALS } from "../tests/helpers/fauxqs.ts";
import { startFaultProxy } from "../tests/helpers/fault_proxy.ts";
import {
  ensureLitestream,
  LITESTREAM,
  machine,
  run,
  STRATA_RUN_ARGS,
  writeBenchSection,
} from "./report.ts";

const SECONDS = Number(Deno.env.get("REQUESTS_BENCH_SECONDS") ?? 3600);
const RATE = 10;
const WORKLOAD = join(PROJECT_ROOT, "bench/workload.py");
const KINDS = ["PUT", "GET", "LIST", "HEAD", "DELETE", "multipart", "other"] as const;
type Kind = typeof KINDS[number];
type Counts = Record<Kind, number>;

/** What an S3 request (path-style) does, from its method and target. */
function kindOf(method: string, target: string): Kind {
  const q = new URLSearchParams(target.split("?")[1] ?? "");
  const key = target.split("?")[0].split("/").slice(2).join("/");
  if (q.has("uploads") || q.has("uploadId")) return "multipart";
  if (method === "POST" && q.has("delete")) return "DELETE";
  if (method === "DELETE") return "DELETE";
  if (method === "PUT") return "PUT";
  if (method === "HEAD") return "HEAD";
  if (method === "GET") return key && !q.has("list-type") && !q.has("prefix") ? "GET" : "LIST";
  return "other";
}

function zero(): Counts {
  return Object.fromEntries(KINDS.map((k) => [k, 0])) as Counts;
}

const total = (c: Counts) => KINDS.reduce((s, k) => s + c[k], 0);

async function main() {
  const lsVersion = await ensureLitestream();
  const dir = await Deno.makeTempDir({ prefix: "strata-requests-bench-" });
  const server = await startS3Server();
  const tools = ["strata", "litestream"] as const;
  const counts = { strata: zero(), litestream: zero() };
  const proxies = tools.map((t) => {
    const p = startFaultProxy(server.endpoint);
    p.choose = (r) => {
      counts[t][kindOf(r.method, r.path)]++;
      return "none";
    };
    return p;
  });
  const children: Deno.ChildProcess[] = [];
  const env = { ...TEST_CREDENTIALS, NO_COLOR: "1" };
  try {
    const apps: Promise<string>[] = [];
    for (const [i, tool] of tools.entries()) {
      const db = join(dir, `${tool}.db`);
      await run("python3", [WORKLOAD, db, "init"]);
      const bucket = await server.createBucket(tool);
      const cfg = join(dir, `${tool}.yml`);
      if (tool === "strata") {
        Deno.writeTextFileSync(
          cfg,
          `dbs:\n  - path: ${db}\n    replicas:\n      - url: s3://${bucket}/db?endpoint=${
            proxies[i].endpoint
          }&region=us-east-1\n`,
        );
      } else {
        Deno.writeTextFileSync(
          cfg,
          `dbs:\n  - path: ${db}\n    replicas:\n      - type: s3\n        bucket: ${bucket}\n` +
            `        path: db\n        endpoint: ${proxies[i].endpoint}\n` +
            `        region: us-east-1\n        force-path-style: true\n`,
        );
      }
      const [cmd, args] = tool === "strata"
        ? [Deno.execPath(), [
          ...STRATA_RUN_ARGS,
          "replicate",
          "-config",
          cfg,
        ]]
        : [LITESTREAM, ["replicate", "-config", cfg]];
      children.push(
        new Deno.Command(cmd, { args, env, stdout: "null", stderr: "null" }).spawn(),
      );
      apps.push(
        run("python3", [
          WORKLOAD,
          db,
          "paced",
          String(RATE),
          String(SECONDS),
          join(dir, `${tool}.beats`),
        ]),
      );
    }
    const samples: { minute: number; strata: number; litestream: number }[] = [];
    const t0 = Date.now();
    const sampler = setInterval(() => {
      const minute = Math.round((Date.now() - t0) / 60_000);
      samples.push({ minute, strata: total(counts.strata), litestream: total(counts.litestream) });
      console.log(
        `  ${minute} min: strata ${total(counts.strata)}, litestream ${total(counts.litestream)}`,
      );
    }, 5 * 60_000);
    await Promise.all(apps);
    clearInterval(sampler);
    for (const c of children) c.kill("SIGINT");
    await Promise.all(children.map((c) => c.status));
    children.length = 0;

    const hours = SECONDS / 3600;
    const perHour = (n: number) => Math.round(n / hours);
    const rows = KINDS.filter((k) => counts.strata[k] + counts.litestream[k] > 0).map((k) =>
      `| ${k} | ${perHour(counts.strata[k])} | ${perHour(counts.litestream[k])} |`
    );
    const date = new Date().toISOString().slice(0, 10);
    const md = `## ${date} — S3 requests per hour beside Litestream ${lsVersion} (issue 5)

Machine: ${machine()}. Run with \`deno run -A bench/s3_requests_bench.ts\` (part of \`deno task
bench\`). Two databases, each written by \`bench/workload.py paced ${RATE}\` (${RATE} small commits/s)
for ${SECONDS} s, one replicated by strata and one by Litestream at the same time to the same local
S3 server (fauxqs), each through its own counting proxy; both tools with their default settings
(1 s sync interval; strata's default levels 30 s / 5 m / 1 h, l0-retention 5 m checked every 5 m;
Litestream's default hourly retention check). Counts include start-up and the final sync at stop.

| requests per hour | strata | Litestream ${lsVersion} |
| --- | --- | --- |
${rows.join("\n")}
| **total** | **${perHour(total(counts.strata))}** | **${perHour(total(counts.litestream))}** |

Target: strata ≤ Litestream. ${
      total(counts.strata) <= total(counts.litestream) ? "Met." : "Not met."
    }${
      samples.length
        ? `\n\nCumulative requests every 5 minutes (strata / Litestream): ${
          samples.map((s) => `${s.minute} min ${s.strata}/${s.litestream}`).join(", ")
        }.`
        : ""
    }
`;
    console.log("\n" + md);
    if (SECONDS >= 3600) await writeBenchSection("s3-requests-bench", md);
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    }
    for (const p of proxies) await p.stop();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();

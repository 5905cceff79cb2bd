/**
 * A Google Cloud Storage emulator for the gs tests: the Cloud Storage for
 * Firebase emulator from npm `firebase-tools` (pure Node; it serves the GCS
 * JSON API that @google-cloud/storage speaks: objects list/get/insert/delete,
 * ranges, multipart and resumable uploads, custom metadata). Installed on
 * first use into ~/.cache/strata-test/ with npm (outside the repository),
 * run on 127.0.0.1 with free ports, no UI, a demo project (no Google
 * account), and stopped by `stop()`, which ends only the process it started.
 */

import { join } from "node:path";

export const FIREBASE_TOOLS_VERSION = "15.34.2";

export interface GcsEmulator {
  /** host:port, the value for STORAGE_EMULATOR_HOST (with http://). */
  host: string;
  stop(): Promise<void>;
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "strata-test", `firebase-tools-${FIREBASE_TOOLS_VERSION}`);
}

function cli(dir: string): string {
  return join(dir, "node_modules/firebase-tools/lib/bin/firebase.js");
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Installs firebase-tools with npm once (concurrent callers: one install wins). */
export async function ensureFirebaseTools(): Promise<string> {
  const dir = cacheDir();
  if (await exists(cli(dir))) return cli(dir);
  await Deno.mkdir(join(dir, ".."), { recursive: true });
  const tmp = `${dir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(tmp, { recursive: true });
  await Deno.writeTextFile(join(tmp, "package.json"), '{"private":true}\n');
  const r = await new Deno.Command("npm", {
    args: [
      "install",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      "--prefix",
      tmp,
      `firebase-tools@${FIREBASE_TOOLS_VERSION}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`npm install firebase-tools failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  try {
    await Deno.rename(tmp, dir);
  } catch {
    await Deno.remove(tmp, { recursive: true }).catch(() => {}); // another install won
  }
  if (!(await exists(cli(dir)))) throw new Error(`firebase-tools not found in ${dir}`);
  return cli(dir);
}

function freePorts(n: number): number[] {
  const ls = Array.from({ length: n }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = ls.map((l) => (l.addr as Deno.NetAddr).port);
  ls.forEach((l) => l.close());
  return ports;
}

/**
 * The launcher: the emulator's StorageEmulator class, run without the CLI.
 * The CLI insists on Java 21 for every emulator, and the storage emulator's
 * security-rules runtime is a Java jar it downloads; neither is needed here,
 * since the GCS JSON API routes (what @google-cloud/storage uses) are served
 * by its admin storage layer, which does not evaluate rules.
 */
const LAUNCHER = `
const [tools, port] = process.argv.slice(2);
const { StorageEmulator } = require(tools + "/lib/emulator/storage/index.js");
const emu = new StorageEmulator({ host: "127.0.0.1", port: Number(port), projectId: "demo-strata", auto_download: false });
for (const o of [emu._rulesRuntime, emu._rulesManager]) { o.start = async () => {}; o.stop = async () => {}; }
const { EmulatorRegistry } = require(tools + "/lib/emulator/registry.js");
EmulatorRegistry.start(emu).then(() => console.log("GCS EMULATOR READY"), (e) => { console.error(e); process.exit(1); });
const stop = () => emu.stop().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
`;

export async function startGcsEmulator(): Promise<GcsEmulator> {
  const firebase = await ensureFirebaseTools();
  const tools = join(firebase, "../../..");
  const dir = await Deno.makeTempDir({ prefix: "strata-gcs-emu-" });
  const launcher = join(dir, "launch.cjs");
  await Deno.writeTextFile(launcher, LAUNCHER);
  for (let attempt = 0;; attempt++) {
    const [port] = freePorts(1);
    const child = new Deno.Command("node", {
      args: [launcher, tools, String(port)],
      cwd: dir,
      env: { TMPDIR: dir, XDG_CONFIG_HOME: join(dir, "config") },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const dec = new TextDecoder();
    let out = "";
    const collect = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) out += dec.decode(c);
    };
    const done = Promise.all([collect(child.stdout), collect(child.stderr)]);
    let exited = false;
    child.status.then(() => (exited = true));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !exited && !/GCS EMULATOR READY/.test(out)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited && /GCS EMULATOR READY/.test(out)) {
      return {
        host: `http://127.0.0.1:${port}`,
        async stop() {
          try {
            child.kill("SIGTERM");
          } catch { /* exited */ }
          const t = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch { /* exited */ }
          }, 10_000);
          await child.status;
          clearTimeout(t);
          await done;
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        },
      };
    }
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await done;
    if (!/EADDRINUSE/i.test(out) || attempt >= 3) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`the GCS emulator did not start: ${out.trim().slice(-2000)}`);
    }
  }
}

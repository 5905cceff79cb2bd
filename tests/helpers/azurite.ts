/**
 * Azurite (Microsoft's Azure Storage emulator, from npm) for the abs tests:
 * the blob service only, on 127.0.0.1 and a free port, in memory, telemetry
 * off. Installed on first use into ~/.cache/strata-test/azurite-<version>
 * with npm (outside the repository); `stop()` ends only the process it started.
 */

import { join } from "node:path";

export const AZURITE_VERSION = "3.37.0";
/** Azurite's well-known development account. */
export const DEV_ACCOUNT = "devstoreaccount1";
export const DEV_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface Azurite {
  /** Blob service endpoint, e.g. http://127.0.0.1:43210/devstoreaccount1 */
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "strata-test", `azurite-${AZURITE_VERSION}`);
}

function mainJs(dir: string): string {
  return join(dir, "node_modules/azurite/dist/src/blob/main.js");
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Installs Azurite with npm once (concurrent callers: one install wins, the others reuse it). */
export async function ensureAzurite(): Promise<string> {
  const dir = cacheDir();
  if (await exists(mainJs(dir))) return mainJs(dir);
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
      `azurite@${AZURITE_VERSION}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`npm install azurite failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  try {
    await Deno.rename(tmp, dir);
  } catch {
    await Deno.remove(tmp, { recursive: true }).catch(() => {}); // another install won
  }
  if (!(await exists(mainJs(dir)))) throw new Error(`azurite not found after install in ${dir}`);
  return mainJs(dir);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function startAzurite(): Promise<Azurite> {
  const main = await ensureAzurite();
  const workdir = await Deno.makeTempDir({ prefix: "strata-azurite-" });
  for (let attempt = 0;; attempt++) {
    const port = freePort();
    const child = new Deno.Command("node", {
      args: [
        main,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        String(port),
        "--inMemoryPersistence",
        "--loose",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
      ],
      cwd: workdir, // in memory; anything it might still write lands here
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
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !exited && !/successfully listens/.test(out)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited && /successfully listens/.test(out)) {
      return {
        endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`,
        port,
        async stop() {
          try {
            child.kill("SIGTERM");
          } catch { /* exited */ }
          await child.status;
          await done;
          await Deno.remove(workdir, { recursive: true }).catch(() => {});
        },
      };
    }
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await done;
    if (!/EADDRINUSE/.test(out) || attempt >= 4) {
      await Deno.remove(workdir, { recursive: true }).catch(() => {});
      throw new Error(`azurite did not start: ${out.trim()}`);
    }
  }
}

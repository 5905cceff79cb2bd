/**
 * Shared pieces of the local-server harnesses: npm packages installed once
 * into ~/.cache/strata-test/ (outside the repository), and free loopback ports.
 */

import { join } from "node:path";
import { exists } from "../../src/fsutil.ts";

/**
 * Installs `name@version` with npm once and returns the path of `entry`
 * inside its node_modules. Concurrent callers each install into a temporary
 * directory; the first rename wins and the others reuse it.
 */
export async function ensureNpmPackage(
  name: string,
  version: string,
  entry: string,
): Promise<string> {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  const dir = join(base, "strata-test", `${name.replace(/[@/]/g, "_")}-${version}`);
  const target = join(dir, "node_modules", name, entry);
  if (await exists(target)) return target;
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
      `${name}@${version}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`npm install ${name} failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  try {
    await Deno.rename(tmp, dir);
  } catch {
    await Deno.remove(tmp, { recursive: true }).catch(() => {}); // another install won
  }
  if (!(await exists(target))) throw new Error(`${name} not found after install in ${dir}`);
  return target;
}

/** `n` distinct free ports on 127.0.0.1 (held together while chosen). */
export function freePorts(n: number): number[] {
  const ls = Array.from({ length: n }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = ls.map((l) => (l.addr as Deno.NetAddr).port);
  ls.forEach((l) => l.close());
  return ports;
}

/** A server process started by `spawnUntilReady`. */
export interface SpawnedServer {
  /** The server printed its ready line (else it was stopped: see `output`). */
  ready: boolean;
  /** Everything it printed on stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; waits until it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `command` (stdout and stderr piped) and waits until its output
 * matches `readyLine`, it exits, or `timeoutMs` passes; a server that is not
 * ready is killed before this returns.
 */
export async function spawnUntilReady(
  command: Deno.Command,
  readyLine: RegExp,
  timeoutMs: number,
): Promise<SpawnedServer> {
  const child = command.spawn();
  const dec = new TextDecoder();
  let out = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) out += dec.decode(c);
  };
  const done = Promise.all([collect(child.stdout), collect(child.stderr)]);
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited && !readyLine.test(out)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const kill = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch { /* exited */ }
  };
  const stop = async (graceMs = 10_000) => {
    kill("SIGTERM");
    const t = setTimeout(() => kill("SIGKILL"), graceMs);
    await child.status;
    clearTimeout(t);
    await done;
  };
  const ready = !exited && readyLine.test(out);
  if (!ready) {
    kill("SIGKILL");
    await child.status;
    await done;
  }
  return { ready, output: () => out, stop };
}

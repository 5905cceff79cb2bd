/**
 * Azurite (Microsoft's Azure Storage emulator, from npm) for the abs tests:
 * the blob service only, on 127.0.0.1 and a free port, in memory, telemetry
 * off. Installed on first use into ~/.cache/strata-test/azurite-<version>
 * with npm (outside the repository); `stop()` ends only the process it started.
 */

import { ensureNpmPackage, freePorts, spawnUntilReady } from "./test_tools.ts";

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

/** Installs Azurite with npm once (concurrent callers: one install wins, the others reuse it). */
export function ensureAzurite(): Promise<string> {
  return ensureNpmPackage("azurite", AZURITE_VERSION, "dist/src/blob/main.js");
}

export async function startAzurite(): Promise<Azurite> {
  const main = await ensureAzurite();
  const workdir = await Deno.makeTempDir({ prefix: "strata-azurite-" });
  for (let attempt = 0;; attempt++) {
    const [port] = freePorts(1);
    const cmd = new Deno.Command("node", {
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
    });
    const server = await spawnUntilReady(cmd, /successfully listens/, 20_000);
    if (server.ready) {
      return {
        endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`,
        port,
        async stop() {
          await server.stop();
          await Deno.remove(workdir, { recursive: true }).catch(() => {});
        },
      };
    }
    const out = server.output();
    if (!/EADDRINUSE/.test(out) || attempt >= 4) {
      await Deno.remove(workdir, { recursive: true }).catch(() => {});
      throw new Error(`azurite did not start: ${out.trim()}`);
    }
  }
}

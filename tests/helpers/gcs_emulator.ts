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
import { ensureNpmPackage, freePorts, spawnUntilReady } from "./test_tools.ts";

export const FIREBASE_TOOLS_VERSION = "15.34.2";

export interface GcsEmulator {
  /** host:port, the value for STORAGE_EMULATOR_HOST (with http://). */
  host: string;
  stop(): Promise<void>;
}

/** Installs firebase-tools with npm once (concurrent callers: one install wins). */
export function ensureFirebaseTools(): Promise<string> {
  return ensureNpmPackage("firebase-tools", FIREBASE_TOOLS_VERSION, "lib/bin/firebase.js");
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
    const cmd = new Deno.Command("node", {
      args: [launcher, tools, String(port)],
      cwd: dir,
      env: { TMPDIR: dir, XDG_CONFIG_HOME: join(dir, "config") },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    const server = await spawnUntilReady(cmd, /GCS EMULATOR READY/, 30_000);
    if (server.ready) {
      return {
        host: `http://127.0.0.1:${port}`,
        async stop() {
          await server.stop();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        },
      };
    }
    const out = server.output();
    if (!/EADDRINUSE/i.test(out) || attempt >= 3) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`the GCS emulator did not start: ${out.trim().slice(-2000)}`);
    }
  }
}

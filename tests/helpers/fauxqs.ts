/**
 * A local S3 server for tests: the fauxqs emulator (npm) in its own process on
 * 127.0.0.1 with a free port. `stop()` ends exactly the process it started.
 */

import { join } from "node:path";
import { PROJECT_ROOT } from "./vectors.ts";

/** Any credentials are accepted by fauxqs; the tests pass these through the environment. */
export const TEST_CREDENTIALS = {
  LITESTREAM_ACCESS_KEY_ID: "strata-test",
  LITESTREAM_SECRET_ACCESS_KEY: "strata-test-secret",
};

export interface S3Server {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  port: number;
  /** Creates a bucket with a fresh unique name and returns it. */
  createBucket(prefix?: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts fauxqs; rejects if it does not listen within `timeoutMs`. */
export async function startS3Server(timeoutMs = 120_000): Promise<S3Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(PROJECT_ROOT, "tests/helpers/fauxqs_server.ts"), "0"],
    cwd: PROJECT_ROOT,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let port = 0;
  let buf = "";
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  try {
    while (!port) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) port = Number(m[1]);
    }
  } finally {
    clearTimeout(timer);
  }
  if (!port) {
    await child.status;
    throw new Error(`fauxqs did not start: ${await stderrText}`);
  }
  // keep draining stdout so the child never blocks on a full pipe
  const drain = (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch { /* closed */ }
  })();
  const endpoint = `http://127.0.0.1:${port}`;
  let n = 0;
  return {
    endpoint,
    port,
    async createBucket(prefix = "strata-test") {
      const name = `${prefix}-${Date.now().toString(36)}-${(n++).toString(36)}-${
        crypto.randomUUID().slice(0, 6)
      }`;
      const r = await fetch(`${endpoint}/${name}`, { method: "PUT" });
      await r.body?.cancel();
      if (!r.ok) throw new Error(`create bucket ${name}: HTTP ${r.status}`);
      return name;
    },
    async stop() {
      try {
        await child.stdin.close();
      } catch { /* closed */ }
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.status;
      await drain;
      await stderrText;
    },
  };
}

/**
 * A throwaway NATS server with JetStream for the nats tests (Debian's
 * nats-server, installed by tests/prepare.ts): 127.0.0.1, a free port, its
 * JetStream store in a temporary directory, one user (password auth).
 * `stop()` ends only the server it started.
 */

import { join } from "node:path";
import { freePorts, spawnUntilReady } from "./test_tools.ts";

export const NATS_SERVER = "/usr/sbin/nats-server";
export const NATS_USER = "strata";
export const NATS_PASSWORD = "nats-secret";

export interface NatsServer {
  /** `nats://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Stops the server, keeping its store (for `up`). */
  down(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

function spawnNats(port: number, dir: string) {
  return spawnUntilReady(
    new Deno.Command(NATS_SERVER, {
      args: [
        "-a",
        "127.0.0.1",
        "-p",
        String(port),
        "-js",
        "-sd",
        join(dir, "js"),
        "--user",
        NATS_USER,
        "--pass",
        NATS_PASSWORD,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
    /Server is ready/,
    20_000,
  );
}

export async function startNatsServer(): Promise<NatsServer> {
  const dir = await Deno.makeTempDir({ prefix: "strata-nats-" });
  for (let attempt = 0;; attempt++) {
    const [port] = freePorts(1);
    let server = await spawnNats(port, dir);
    if (server.ready) {
      return {
        url: `nats://127.0.0.1:${port}`,
        port,
        async down() {
          await server.stop();
        },
        async up() {
          server = await spawnNats(port, dir);
          if (!server.ready) throw new Error(`nats-server did not restart: ${server.output()}`);
        },
        async stop() {
          await server.stop();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        },
      };
    }
    const out = server.output();
    if (!/address already in use/i.test(out) || attempt >= 4) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw new Error(`nats-server did not start: ${out.trim()}`);
    }
  }
}

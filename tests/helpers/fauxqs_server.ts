/**
 * Runs the fauxqs S3 emulator on 127.0.0.1 (port from argv, 0 = any free
 * port) and prints `{"port": N}` once listening. It exits when its standard
 * input closes, so it never outlives the test process that started it.
 */

import { buildApp } from "fauxqs";

const port = Number(Deno.args[0] ?? "0");
const app = buildApp({ logger: false });
await app.listen({ port, host: "127.0.0.1" });
const addr = app.server.address();
const actual = typeof addr === "object" && addr ? addr.port : port;
console.log(JSON.stringify({ port: actual }));

const stop = async () => {
  await app.close().catch(() => {});
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
// stdin closes when the parent goes away
for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
await stop();

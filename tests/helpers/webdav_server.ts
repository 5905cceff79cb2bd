/**
 * A real WebDAV server for the webdav tests: npm's webdav-server (v2) under
 * Node, on 127.0.0.1 and a free port, in memory, with one user (HTTP basic
 * authentication). Installed on first use into ~/.cache/strata-test/ with npm
 * (outside the repository); `stop()` ends only the process it started.
 */

import { ensureNpmPackage, freePorts, spawnUntilReady } from "./test_tools.ts";

export const WEBDAV_SERVER_VERSION = "2.6.3";
export const WEBDAV_USER = "strata";
export const WEBDAV_PASSWORD = "dav-secret";

export interface WebDavServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  stop(): Promise<void>;
}

const SCRIPT = `
const webdav = require(process.argv[1]).v2;
const users = new webdav.SimpleUserManager();
const user = users.addUser(process.argv[3], process.argv[4], false);
const privileges = new webdav.SimplePathPrivilegeManager();
privileges.setRights(user, "/", ["all"]);
const server = new webdav.WebDAVServer({
  hostname: "127.0.0.1",
  port: Number(process.argv[2]),
  httpAuthentication: new webdav.HTTPBasicAuthentication(users, "strata-test"),
  privilegeManager: privileges,
  requireAuthentification: true,
});
server.start(() => console.log("webdav ready"));
`;

export async function startWebDavServer(): Promise<WebDavServer> {
  const main = await ensureNpmPackage("webdav-server", WEBDAV_SERVER_VERSION, "lib/index.js");
  for (let attempt = 0;; attempt++) {
    const [port] = freePorts(1);
    const server = await spawnUntilReady(
      new Deno.Command("node", {
        args: ["-e", SCRIPT, main, String(port), WEBDAV_USER, WEBDAV_PASSWORD],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
      /webdav ready/,
      20_000,
    );
    if (server.ready) {
      return { url: `http://127.0.0.1:${port}`, stop: () => server.stop() };
    }
    const out = server.output();
    if (!/EADDRINUSE/.test(out) || attempt >= 4) {
      throw new Error(`webdav-server did not start: ${out.trim()}`);
    }
  }
}

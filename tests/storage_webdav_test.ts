/**
 * The webdav client against a real WebDAV server (npm's webdav-server under
 * Node, HTTP basic authentication), started by the tests on 127.0.0.1:
 * the storage conformance suite, Litestream's layout, and a wrong password
 * failing at once with the reason.
 */

import { WebDavReplicaClient } from "../src/storage/webdav_client.ts";
import { replicateOnceAndRestore } from "./helpers/live.ts";
import { parseReplicaUrl } from "../src/config/replica_url.ts";
import { parseConfig } from "../src/config/config.ts";
import type { WebDavReplicaConfig } from "../src/config/webdav_config.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { conformanceTests, readAll, streamOf, testBytes } from "./helpers/conformance.ts";
import { startWebDavServer, WEBDAV_PASSWORD, WEBDAV_USER } from "./helpers/webdav_server.ts";

function clientFor(url: string, path: string, password = WEBDAV_PASSWORD) {
  return new WebDavReplicaClient({
    type: "webdav",
    url,
    path,
    username: WEBDAV_USER,
    password,
  });
}

conformanceTests("webdav", async () => {
  const server = await startWebDavServer();
  return { client: clientFor(server.url, "/backups/app"), close: () => server.stop() };
});

Deno.test("webdav: Litestream's layout and URL forms; a wrong password fails at once, naming it", async () => {
  const server = await startWebDavServer();
  try {
    const c = clientFor(server.url, "/backups/app");
    await c.writeFile(
      3,
      0x10n,
      0x2an,
      streamOf(testBytes(5000)),
      new Date("2025-06-07T08:09:10.450Z"),
    );
    const auth = "Basic " + btoa(`${WEBDAV_USER}:${WEBDAV_PASSWORD}`);
    const res = await fetch(
      `${server.url}/backups/app/ltx/3/0000000000000010-000000000000002a.ltx`,
      { headers: { Authorization: auth } },
    );
    assertEquals(res.status, 200, "the file is where Litestream puts it");
    assertEquals((await res.arrayBuffer()).byteLength, 5000);
    const [f] = await c.listFiles(3);
    assertEquals(f.createdAt.toISOString(), "2025-06-07T08:09:10.450Z", "creation time kept");
    const part = await readAll(await c.openFile(3, 0x10n, 0x2an, { offset: 100, length: 50 }));
    assertEquals(part, testBytes(5000).subarray(100, 150));

    assertEquals(parseReplicaUrl(`webdavs://u:p%40ss@dav.example.com:8443/a/b`), {
      type: "webdav",
      url: "https://dav.example.com:8443",
      path: "/a/b",
      username: "u",
      password: "p@ss",
    });
    // credentials written into webdav-url become the login and never part of the location
    const keyed = parseConfig(
      "dbs:\n  - path: /a.db\n    replica:\n      type: webdav\n      webdav-url: https://bob:s3cret@dav.example.com\n      path: /x\n",
      "t.yml",
    ).dbs[0].replicas[0] as WebDavReplicaConfig;
    assertEquals([keyed.url, keyed.username, keyed.password], [
      "https://dav.example.com",
      "bob",
      "s3cret",
    ]);
    assert(!new WebDavReplicaClient(keyed).location.includes("s3cret"));
    const bad = clientFor(server.url, "/backups/app", "wrong");
    const t0 = Date.now();
    let err = "";
    await bad.listFiles(0).catch((e) => (err = (e as Error).message));
    assertMatch(err, /HTTP 401 \(check webdav-username and webdav-password\)/);
    assert(!err.includes("wrong"), "the password is never in messages");
    assert(Date.now() - t0 < 5000, "not retried");
  } finally {
    await server.stop();
  }
});

Deno.test("webdav end to end: replicate -once to webdav:// and restore it exactly; no password in the output", async () => {
  const server = await startWebDavServer();
  const dir = await Deno.makeTempDir({ prefix: "strata-webdav-" });
  try {
    const host = server.url.slice("http://".length);
    const url = `webdav://${WEBDAV_USER}:${WEBDAV_PASSWORD}@${host}/backups/app`;
    await replicateOnceAndRestore(url, dir, WEBDAV_PASSWORD);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

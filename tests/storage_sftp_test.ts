/** The sftp client against OpenSSH's sshd, started by the tests on 127.0.0.1. */

import { join } from "node:path";
import type { SftpReplicaConfig } from "../src/config/sftp_config.ts";
import { SftpReplicaClient } from "../src/storage/sftp_client.ts";
import { PermanentStorageError } from "../src/storage/remote_util.ts";
import { knownHostsName } from "../src/storage/known_hosts.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "./helpers/assert.ts";
import { conformanceTests, readAll, streamOf, testBytes } from "./helpers/conformance.ts";
import { type Sshd, startSshd } from "./helpers/sshd.ts";

function cfgFor(sshd: Sshd, extra: Partial<SftpReplicaConfig> = {}): SftpReplicaConfig {
  return {
    type: "sftp",
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    path: sshd.dataDir + "/replica",
    keyPath: sshd.userKeyPath,
    hostKey: sshd.hostKey,
    ...extra,
  };
}

conformanceTests("sftp", async () => {
  const sshd = await startSshd();
  const client = new SftpReplicaClient(cfgFor(sshd));
  return {
    client,
    async close() {
      await client.close();
      await sshd.stop();
    },
  };
}, { createdAtResolutionMs: 1000 }); // SFTP v3 file times are whole seconds

async function withSshd(fn: (s: Sshd) => Promise<void>) {
  const sshd = await startSshd();
  try {
    await fn(sshd);
  } finally {
    await sshd.stop();
  }
}

Deno.test("sftp: a wrong host-key is refused with both fingerprints, and nothing is written", async () => {
  await withSshd(async (sshd) => {
    const c = new SftpReplicaClient(cfgFor(sshd, { hostKey: sshd.otherHostKey }));
    try {
      const e = await assertRejects(
        () => c.writeFile(0, 1n, 1n, streamOf(testBytes(10)), new Date()),
        PermanentStorageError,
      );
      assertMatch(e.message, /host key mismatch for .*127\.0\.0\.1:\d+/);
      assertMatch(e.message, /offered ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
      assertMatch(e.message, /"host-key" is ssh-ed25519 SHA256:/);
      await assertRejects(() => c.listFiles(0), PermanentStorageError, "host key mismatch");
    } finally {
      await c.close();
    }
    let entries = 0;
    for await (const _ of Deno.readDir(sshd.dataDir)) entries++;
    assertEquals(entries, 0);
  });
});

Deno.test("sftp: without host-key, known_hosts decides (unknown host, changed key, hashed match)", async () => {
  await withSshd(async (sshd) => {
    const kh = join(sshd.dir, "known_hosts");
    const name = knownHostsName(sshd.host, sshd.port);
    const open = (files: string[]) =>
      new SftpReplicaClient(cfgFor(sshd, { hostKey: undefined }), {
        knownHostsFiles: files,
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      });
    // not listed at all
    await Deno.writeTextFile(kh, `other.example ${sshd.hostKey}\n`);
    let c = open([kh]);
    let e = await assertRejects(() => c.listFiles(0), PermanentStorageError);
    assertMatch(e.message, /is unknown: \[127\.0\.0\.1\]:\d+ is not in known_hosts/);
    assert(e.message.includes(sshd.hostKey.split(" ").slice(0, 2).join(" ")), e.message);
    await c.close();
    // listed with another key of the same type
    await Deno.writeTextFile(kh, `${name} ${sshd.otherHostKey}\n`);
    c = open([kh]);
    e = await assertRejects(() => c.listFiles(0), PermanentStorageError);
    assertMatch(e.message, /host key mismatch .*someone may be intercepting/);
    await c.close();
    // listed by a hashed name (ssh-keygen -H), among other lines
    const blob = sshd.hostKey.split(" ").slice(0, 2).join(" ");
    await Deno.writeTextFile(kh, `# comment\nother ${sshd.otherHostKey}\n${name} ${blob}\n`);
    const r = await new Deno.Command("ssh-keygen", {
      args: ["-H", "-f", kh],
      stderr: "null",
      stdout: "null",
    })
      .output();
    assertEquals(r.code, 0);
    assert(!(await Deno.readTextFile(kh)).includes(name), "the name is hashed");
    c = open([kh]);
    try {
      assertEquals(await c.listFiles(0), []);
    } finally {
      await c.close();
    }
  });
});

Deno.test("sftp: a key the server does not accept is an authentication error, not retried", async () => {
  await withSshd(async (sshd) => {
    const badKey = join(sshd.dir, "stranger");
    const r = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-f", badKey],
    }).output();
    assertEquals(r.code, 0);
    const c = new SftpReplicaClient(cfgFor(sshd, { keyPath: badKey }));
    const t0 = Date.now();
    try {
      const e = await assertRejects(() => c.listFiles(0), PermanentStorageError);
      assertMatch(e.message, /authentication failed/);
      assert(Date.now() - t0 < 5000, "no retries");
      const missing = new SftpReplicaClient(cfgFor(sshd, { keyPath: join(sshd.dir, "nope") }));
      await assertRejects(
        () => missing.listFiles(0),
        PermanentStorageError,
        `cannot read "key-path"`,
      );
    } finally {
      await c.close();
    }
  });
});

Deno.test("sftp: layout is Litestream's, temp files never listed, mtime holds the creation time", async () => {
  await withSshd(async (sshd) => {
    const c = new SftpReplicaClient(cfgFor(sshd));
    try {
      const t = new Date("2025-06-07T08:09:10.456Z");
      await c.writeFile(3, 0x10n, 0x2an, streamOf(testBytes(5000)), t);
      const path = join(sshd.dataDir, "replica/ltx/3/0000000000000010-000000000000002a.ltx");
      const st = await Deno.stat(path);
      assertEquals(st.size, 5000);
      assertEquals(st.mtime?.getTime(), Math.floor(t.getTime() / 1000) * 1000);
      // a leftover temp file from a crashed writer is not a replica file
      await Deno.writeFile(path.replace(".ltx", ".ltx.123.abc.tmp"), new Uint8Array(3));
      const list = await c.listFiles(3);
      assertEquals(list.map((f) => f.maxTXID), [0x2an]);
      // a connection dropped by the server is re-established transparently
      await c.close();
      const got = await readAll(await c.openFile(3, 0x10n, 0x2an, { offset: 100, length: 50 }));
      assertEquals(got, testBytes(5000).subarray(100, 150));
    } finally {
      await c.close();
    }
  });
});

/**
 * A throwaway OpenSSH server for the SFTP tests: `sshd -D -e` with its own
 * config, host key and user key in a temp dir, on 127.0.0.1 and a free port,
 * authorizing the current user by key. `stop()` ends only the sshd it started.
 */

import { join } from "node:path";
import { freePorts } from "./test_tools.ts";

export const SSHD = "/usr/sbin/sshd";

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** A directory the tests may use (inside the temp dir). */
  dataDir: string;
  /** The user's private key (OpenSSH format, no passphrase). */
  userKeyPath: string;
  /** The server's public host key, as in known_hosts / authorized_keys: "ssh-ed25519 AAAA…". */
  hostKey: string;
  /** Another public key that is NOT the server's (for mismatch tests). */
  otherHostKey: string;
  /** Temp dir holding everything (removed by stop()). */
  dir: string;
  stop(): Promise<void>;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

export function sshdAvailable(): boolean {
  try {
    return Deno.statSync(SSHD).isFile;
  } catch {
    return false;
  }
}

async function waitForBanner(port: number, child: Deno.ChildProcess, deadline: number) {
  let exited = false;
  child.status.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) return false;
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        const buf = new Uint8Array(64);
        const n = await c.read(buf);
        if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("SSH-2.0-")) return true;
      } finally {
        c.close();
      }
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Starts sshd; throws with its stderr when it cannot. */
export async function startSshd(): Promise<Sshd> {
  const dir = await Deno.makeTempDir({ prefix: "strata-sshd-" });
  try {
    const user = (await run("id", ["-un"])).trim();
    const hostKeyPath = join(dir, "host_key");
    const userKeyPath = join(dir, "user_key");
    const otherKeyPath = join(dir, "other_key");
    for (const p of [hostKeyPath, userKeyPath, otherKeyPath]) {
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "strata-test", "-f", p]);
    }
    const hostKey = (await Deno.readTextFile(hostKeyPath + ".pub")).trim();
    const otherHostKey = (await Deno.readTextFile(otherKeyPath + ".pub")).trim();
    await Deno.copyFile(userKeyPath + ".pub", join(dir, "authorized_keys"));
    const dataDir = join(dir, "data");
    await Deno.mkdir(dataDir);
    // sshd (as root) insists on its privilege separation directory.
    if (Deno.uid() === 0) await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });

    for (let attempt = 0; attempt < 5; attempt++) {
      const port = freePorts(1)[0];
      const config = [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKeyPath}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UseDNS no",
        "MaxSessions 20",
        "MaxStartups 50",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
      ].join("\n");
      const configPath = join(dir, "sshd_config");
      await Deno.writeTextFile(configPath, config);
      const child = new Deno.Command(SSHD, {
        args: ["-D", "-e", "-f", configPath],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const errText = (async () => {
        const parts: string[] = [];
        const dec = new TextDecoder();
        for await (const c of child.stderr) parts.push(dec.decode(c));
        return parts.join("");
      })();
      if (await waitForBanner(port, child, Date.now() + 10_000)) {
        return {
          host: "127.0.0.1",
          port,
          user,
          dataDir,
          userKeyPath,
          hostKey,
          otherHostKey,
          dir,
          async stop() {
            try {
              child.kill("SIGTERM");
            } catch { /* exited */ }
            await child.status;
            await errText;
            await Deno.remove(dir, { recursive: true }).catch(() => {});
          },
        };
      }
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await child.status;
      const stderr = await errText;
      if (!/Address already in use|Bind to port/.test(stderr) || attempt === 4) {
        throw new Error(`sshd did not start: ${stderr.trim()}`);
      }
    }
    throw new Error("sshd did not start");
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

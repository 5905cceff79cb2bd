/**
 * `strata sync`, `strata start`, `strata stop`: commands sent to a running
 * `strata replicate` through its control socket (`socket:` in its config).
 */

import { resolve } from "node:path";
import { DEFAULT_SOCKET_PATH, DURATION_LIMITS, loadConfig } from "../config/mod.ts";
import { controlRequest } from "../server/mod.ts";
import { parse, wantsHelp } from "./common.ts";
import { type FlagSpecs, type ParsedFlags, UsageError } from "./flags.ts";

export const SOCKET_FLAGS: FlagSpecs = {
  socket: {
    type: "string",
    value: "PATH",
    help: `control socket (default: socket.path of -config, else ${DEFAULT_SOCKET_PATH})`,
  },
  config: { type: "string", value: "PATH", help: "read the socket path from this config file" },
};

const FLAGS: FlagSpecs = {
  ...SOCKET_FLAGS,
  timeout: { type: "string", value: "SECONDS", help: "give up after this long (default 30)" },
  json: { type: "bool", help: "print the answer as JSON" },
};

/** The socket path: -socket, else the -config file's socket.path, else the default. */
export async function socketPath(flags: ParsedFlags): Promise<string> {
  const explicit = flags.strings.get("socket");
  if (explicit) return explicit;
  const config = flags.strings.get("config");
  if (config) return (await loadConfig(config)).socket.path;
  return DEFAULT_SOCKET_PATH;
}

function timeoutOf(flags: ParsedFlags): number {
  const t = flags.strings.get("timeout");
  if (t === undefined) return 30;
  const n = /^\s*\d+(\.\d+)?\s*$/.test(t) ? Number(t) : NaN;
  const { min, max } = DURATION_LIMITS["control timeout"];
  if (!(n * 1000 >= min && n * 1000 <= max)) {
    throw new UsageError(
      `-timeout must be a number of seconds from ${min / 1000} to ${max / 1000}, got ${
        JSON.stringify(t)
      }`,
    );
  }
  return n;
}

function onePath(flags: ParsedFlags): string {
  if (flags.args.length !== 1) throw new UsageError("give one DB_PATH");
  return resolve(flags.args[0]);
}

function print(answer: Record<string, unknown>, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(answer, null, 2));
    return;
  }
  for (const [k, v] of Object.entries(answer)) console.log(`${k}: ${v ?? "-"}`);
}

const SYNC_USAGE = `Usage: strata sync [-wait] [-timeout SECONDS] [-socket PATH] [-json] DB_PATH

Makes the running strata replicate capture what DB_PATH has committed now.
With -wait, returns only once every replica has it (so a deploy script can
wait until a write is durable); exits non-zero when that fails or times out.`;

export async function runSync(argv: string[]): Promise<number> {
  const flags: FlagSpecs = {
    ...FLAGS,
    wait: { type: "bool", help: "wait until every replica has the data" },
  };
  if (wantsHelp(argv, SYNC_USAGE, flags)) return 0;
  const f = parse(argv, flags);
  const path = onePath(f);
  const timeout = timeoutOf(f);
  const started = performance.now();
  const answer = await controlRequest(await socketPath(f), "POST", "/sync", {
    path,
    wait: f.bools.has("wait"),
    timeout,
  }, timeout) as Record<string, unknown>;
  print({
    ...answer,
    duration_ms: Math.round(performance.now() - started),
    // Litestream's names for the same things
    db_path: path,
    ...(answer.replicated_txid !== undefined ? { replica_txid: answer.replicated_txid } : {}),
  }, f.bools.has("json"));
  return 0;
}

function startStop(which: "start" | "stop", usage: string) {
  return async (argv: string[]): Promise<number> => {
    if (wantsHelp(argv, usage, FLAGS)) return 0;
    const f = parse(argv, FLAGS);
    const path = onePath(f);
    const timeout = timeoutOf(f);
    const socket = await socketPath(f);
    const answer = await controlRequest(socket, "POST", `/${which}`, {
      path,
      timeout,
    }, timeout) as Record<string, unknown>;
    // Litestream's names beside strata's: db_path, state, socket
    print({
      ...answer,
      db_path: path,
      state: which === "start" ? "running" : "stopped",
      socket,
    }, f.bools.has("json"));
    return 0;
  };
}

export const runStart = startStop(
  "start",
  `Usage: strata start [-timeout SECONDS] [-socket PATH] [-json] DB_PATH

Starts replicating DB_PATH again in the running strata replicate (after
strata stop).`,
);

export const runStop = startStop(
  "stop",
  `Usage: strata stop [-timeout SECONDS] [-socket PATH] [-json] DB_PATH

Stops replicating DB_PATH in the running strata replicate, after a final
capture and sync; the process keeps replicating the other databases.`,
);

function textOrJson(answer: unknown, json: boolean, text: () => string): void {
  console.log(json ? JSON.stringify(answer, null, 2) : text());
}

const INFO_USAGE = `Usage: strata info [-timeout SECONDS] [-socket PATH] [-json]

Asks the running strata replicate about itself: version, process id, uptime
and how many databases it replicates.`;

export async function runInfo(argv: string[]): Promise<number> {
  if (wantsHelp(argv, INFO_USAGE, FLAGS)) return 0;
  const f = parse(argv, FLAGS);
  if (f.args.length > 0) throw new UsageError("strata info takes no arguments");
  const timeout = f.strings.has("timeout") ? timeoutOf(f) : 10;
  const a = await controlRequest(await socketPath(f), "GET", "/info", undefined, timeout) as {
    version: string;
    pid: number;
    uptime_seconds: number;
    started_at: string;
    database_count: number;
  };
  textOrJson(a, f.bools.has("json"), () =>
    [
      `strata ${a.version}`,
      `PID: ${a.pid}`,
      `Uptime: ${a.uptime_seconds}s`,
      `Started at: ${a.started_at}`,
      `Databases: ${a.database_count}`,
    ].join("\n"));
  return 0;
}

const LIST_USAGE = `Usage: strata list [-timeout SECONDS] [-socket PATH] [-json]

Lists the databases the running strata replicate has, their state and the
time of their last sync.`;

export async function runList(argv: string[]): Promise<number> {
  if (wantsHelp(argv, LIST_USAGE, FLAGS)) return 0;
  const f = parse(argv, FLAGS);
  if (f.args.length > 0) throw new UsageError("strata list takes no arguments");
  const timeout = f.strings.has("timeout") ? timeoutOf(f) : 10;
  const a = await controlRequest(await socketPath(f), "GET", "/list", undefined, timeout) as {
    databases: { path: string; status: string; last_sync_at?: string }[];
  };
  textOrJson(
    a,
    f.bools.has("json"),
    () =>
      a.databases.length === 0
        ? "No databases configured"
        : a.databases.map((d) =>
          `${d.path} [${d.status}] (last sync: ${d.last_sync_at ?? "never"})`
        ).join("\n"),
  );
  return 0;
}

const REGISTER_USAGE =
  `Usage: strata register -replica URL [-timeout SECONDS] [-socket PATH] [-json] DB_PATH

Makes the running strata replicate replicate DB_PATH to the replica at URL
from now on (until strata unregister or the process stops).`;

export async function runRegister(argv: string[]): Promise<number> {
  const flags: FlagSpecs = {
    ...FLAGS,
    replica: { type: "string", value: "URL", help: "the replica URL (required)" },
  };
  if (wantsHelp(argv, REGISTER_USAGE, flags)) return 0;
  const f = parse(argv, flags);
  const path = onePath(f);
  const replica = f.strings.get("replica");
  if (!replica) throw new UsageError("-replica URL is required");
  const timeout = timeoutOf(f);
  const a = await controlRequest(await socketPath(f), "POST", "/register", {
    path,
    replica,
    timeout,
  }, timeout) as Record<string, unknown>;
  print(a, f.bools.has("json"));
  return 0;
}

const UNREGISTER_USAGE = `Usage: strata unregister [-timeout SECONDS] [-socket PATH] [-json] DB_PATH

Stops replicating DB_PATH in the running strata replicate after a final sync,
and forgets it.`;

export async function runUnregister(argv: string[]): Promise<number> {
  if (wantsHelp(argv, UNREGISTER_USAGE, FLAGS)) return 0;
  const f = parse(argv, FLAGS);
  const path = onePath(f);
  const timeout = timeoutOf(f);
  const a = await controlRequest(await socketPath(f), "POST", "/unregister", {
    path,
    timeout,
  }, timeout) as Record<string, unknown>;
  print(a, f.bools.has("json"));
  return 0;
}

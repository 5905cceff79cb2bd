/** Command dispatch: `strata <command> [flags] [args]`. */

import { VERSION } from "../version.ts";
import { UsageError } from "./flags.ts";

/** Each command's modules load only when it runs: `strata version` loads no SQLite, YAML or SDK code. */
interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  replicate: {
    summary: "Replicate databases continuously",
    run: (a) => import("./replicate.ts").then((m) => m.runReplicate(a)),
  },
  restore: {
    summary: "Restore a database from a replica",
    run: (a) => import("./restore.ts").then((m) => m.runRestore(a)),
  },
  databases: {
    summary: "List the configured databases",
    run: (a) => import("./databases.ts").then((m) => m.runDatabases(a)),
  },
  ltx: {
    summary: "List a replica's LTX files per level",
    run: (a) => import("./ltx.ts").then((m) => m.runLtx(a)),
  },
  timeline: {
    summary: "What a replica can be restored to: points, windows, branches",
    run: (a) => import("./timeline.ts").then((m) => m.runTimeline(a)),
  },
  status: {
    summary: "Local and replica positions and the lag, per database",
    run: (a) => import("./status.ts").then((m) => m.runStatus(a)),
  },
  verify: {
    summary: "Restore the latest state into a temporary file and check it",
    run: (a) => import("./verify.ts").then((m) => m.runVerify(a)),
  },
  clone: {
    summary: "Branch a replica at a past point (instant; -delete removes one)",
    run: (a) => import("./clone.ts").then((m) => m.runClone(a)),
  },
  branches: {
    summary: "List the branches made from a replica",
    run: (a) => import("./branches.ts").then((m) => m.runBranches(a)),
  },
  sync: {
    summary: "Make a running replicate sync a database now (-wait: until uploaded)",
    run: (a) => import("./control.ts").then((m) => m.runSync(a)),
  },
  start: {
    summary: "Start replicating a database again in a running replicate",
    run: (a) => import("./control.ts").then((m) => m.runStart(a)),
  },
  stop: {
    summary: "Stop replicating a database in a running replicate",
    run: (a) => import("./control.ts").then((m) => m.runStop(a)),
  },
  info: {
    summary: "Ask a running replicate about itself (version, pid, uptime)",
    run: (a) => import("./control.ts").then((m) => m.runInfo(a)),
  },
  list: {
    summary: "List the databases of a running replicate and their last sync",
    run: (a) => import("./control.ts").then((m) => m.runList(a)),
  },
  register: {
    summary: "Add a database to a running replicate (-replica URL)",
    run: (a) => import("./control.ts").then((m) => m.runRegister(a)),
  },
  unregister: {
    summary: "Stop and forget a database in a running replicate",
    run: (a) => import("./control.ts").then((m) => m.runUnregister(a)),
  },
  reset: {
    summary: "Remove a database's local meta directory (replicas untouched)",
    run: (a) => import("./reset.ts").then((m) => m.runReset(a)),
  },
  demo: {
    summary: "Show strata working on a sample database",
    run: (a) => import("./demo.ts").then((m) => m.runDemo(a)),
  },
  version: {
    summary: "Print the version",
    run: (a) => {
      if (a.includes("-verbose") || a.includes("--verbose")) {
        console.log(
          [
            `strata ${VERSION}`,
            `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
            `OS/Arch: ${Deno.build.os}/${Deno.build.arch}`,
          ].join("\n"),
        );
      } else console.log(`strata ${VERSION}`);
      return Promise.resolve(0);
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join("\n");
  return `strata: streaming backup and point-in-time restore for SQLite

Usage:
  strata <command> [arguments]

Commands:
${list}

Run "strata help <command>" or "strata <command> -h" for a command's flags.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "-h" || name === "--help") {
    const about = rest[0] && commands[rest[0]];
    if (about) return await about.run(["-h"]);
    console.log(usage());
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`strata: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 1;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`strata ${name}: ${e.message}`);
      return 2;
    }
    console.error(`strata ${name}: ${e instanceof Error ? e.message : String(e)}`);
    if (Deno.env.get("STRATA_DEBUG")) console.error(e);
    return 1;
  }
}

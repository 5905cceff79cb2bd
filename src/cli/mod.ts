/** Command dispatch: `strata <command> [flags] [args]`. */

import { VERSION } from "../version.ts";
import { UsageError } from "./flags.ts";
import { runDemo } from "./demo.ts";
import { runReplicate } from "./replicate.ts";
import { runRestore } from "./restore.ts";
import { runDatabases } from "./databases.ts";
import { runLtx } from "./ltx.ts";
import { runStatus } from "./status.ts";
import { runVerify } from "./verify.ts";
import { runClone } from "./clone.ts";
import { runBranches } from "./branches.ts";
import { runStart, runStop, runSync } from "./control.ts";

interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  replicate: { summary: "Replicate databases continuously", run: runReplicate },
  restore: { summary: "Restore a database from a replica", run: runRestore },
  databases: { summary: "List the configured databases", run: runDatabases },
  ltx: { summary: "List a replica's LTX files per level", run: runLtx },
  status: { summary: "Local and replica positions and the lag, per database", run: runStatus },
  verify: {
    summary: "Restore the latest state into a temporary file and check it",
    run: runVerify,
  },
  clone: {
    summary: "Branch a replica at a past point (instant; -delete removes one)",
    run: runClone,
  },
  branches: { summary: "List the branches made from a replica", run: runBranches },
  sync: {
    summary: "Make a running replicate sync a database now (-wait: until uploaded)",
    run: runSync,
  },
  start: { summary: "Start replicating a database again in a running replicate", run: runStart },
  stop: { summary: "Stop replicating a database in a running replicate", run: runStop },
  demo: { summary: "Show strata working on a sample database", run: runDemo },
  version: {
    summary: "Print the version",
    run: () => {
      console.log(`strata ${VERSION}`);
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

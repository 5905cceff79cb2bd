/**
 * `-exec` / `exec:`: the app runs as strata's child. Its command line is split
 * as a shell would split it (quotes and backslashes; no variables, globs or
 * pipes), it inherits stdin/stdout/stderr and the environment, and the
 * signals strata receives are forwarded to it.
 */

import { log } from "../log.ts";

/** Splits a command line into words: 'single', "double" (\" \\ \$ \` escapes) and \x. */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`exec ${JSON.stringify(line)}: unclosed single quote`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && j + 1 < line.length && '"\\$`\n'.includes(line[j + 1])) j++;
        word += line[j];
      }
      if (j >= line.length) throw new Error(`exec ${JSON.stringify(line)}: unclosed double quote`);
      i = j;
    } else if (c === "\\") {
      if (i + 1 < line.length) word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * Listens for each of `signals` (those this platform cannot listen for, as
 * Windows beyond SIGINT, are skipped); returns a function that stops.
 */
export function onSignals(signals: Deno.Signal[], fn: (sig: Deno.Signal) => void): () => void {
  const added: [Deno.Signal, () => void][] = [];
  for (const sig of signals) {
    const listener = () => fn(sig);
    try {
      Deno.addSignalListener(sig, listener);
      added.push([sig, listener]);
    } catch { /* not supported here */ }
  }
  return () => {
    for (const [sig, listener] of added.splice(0)) Deno.removeSignalListener(sig, listener);
  };
}

/** Signals forwarded to the child (SIGINT and SIGTERM also make strata shut down after it). */
const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/**
 * Runs `commandLine` as a child, forwarding signals to it until it exits;
 * returns its exit code (128 + the signal number when a signal ended it).
 */
export async function runChild(commandLine: string): Promise<number> {
  const [cmd, ...args] = splitCommandLine(commandLine);
  if (!cmd) throw new Error("exec: empty command");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (e) {
    throw new Error(`exec ${JSON.stringify(commandLine)}: cannot start: ${(e as Error).message}`);
  }
  log("info", "started child process", { pid: child.pid, exec: commandLine });
  const stopForwarding = onSignals(FORWARDED, (sig) => {
    log("info", "forwarding signal to child process", { signal: sig, pid: child.pid });
    try {
      child.kill(sig);
    } catch { /* exited meanwhile */ }
  });
  try {
    const status = await child.status;
    log("info", "child process exited", {
      pid: child.pid,
      code: status.code,
      ...(status.signal ? { signal: status.signal } : {}),
    });
    return status.code;
  } finally {
    stopForwarding();
  }
}

/** A listener for SIGINT and SIGTERM: `signal` resolves with the first one's name. */
export interface ShutdownSignal {
  readonly signal: Promise<string>;
  /** Whether one arrived. */
  readonly received: boolean;
  /** Stops listening (the signals' default action applies again). */
  cancel(): void;
}

export function listenForShutdown(): ShutdownSignal {
  const stop = Promise.withResolvers<string>();
  let received = false;
  const cancel = onSignals(["SIGINT", "SIGTERM"], (sig) => {
    received = true;
    stop.resolve(sig);
  });
  stop.promise.then(cancel);
  return {
    signal: stop.promise,
    get received() {
      return received;
    },
    cancel,
  };
}

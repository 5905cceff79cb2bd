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
  const listeners = FORWARDED.map((sig) => {
    const fn = () => {
      log("info", "forwarding signal to child process", { signal: sig, pid: child.pid });
      try {
        child.kill(sig);
      } catch { /* exited meanwhile */ }
    };
    Deno.addSignalListener(sig, fn);
    return [sig, fn] as const;
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
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
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
  const sigs: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const fns = sigs.map((s) =>
    [s, () => {
      received = true;
      stop.resolve(s);
    }] as const
  );
  for (const [s, fn] of fns) Deno.addSignalListener(s, fn);
  let listening = true;
  const cancel = () => {
    if (!listening) return;
    listening = false;
    for (const [s, fn] of fns) Deno.removeSignalListener(s, fn);
  };
  stop.promise.then(cancel);
  return {
    signal: stop.promise,
    get received() {
      return received;
    },
    cancel,
  };
}

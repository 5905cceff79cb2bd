/** `strata restore`: a database as of the latest state, a timestamp or a TXID. */

import { basename, resolve } from "node:path";
import { formatTXID } from "../ltx/mod.ts";
import {
  earlierThanAsked,
  executeV03Restore,
  followRecordPath,
  followReplica,
  type IntegrityCheck,
  listAllFiles,
  OutputExistsError,
  type PageApplier,
  planRestore,
  restoreCache,
  RestoreError,
  type RestoreTarget,
  resumeFollowState,
  writeFollowRecord,
} from "../restore/mod.ts";
import { log } from "../log.ts";
import { restoreReplica } from "../branch/mod.ts";
import {
  hasV03Generations,
  hex8,
  planV03Restore,
  rawReaderOf,
  type RawReplicaReader,
  type ReplicaClient,
} from "../storage/mod.ts";
import { DURATION_LIMITS } from "../config/limits.ts";
import { exists } from "../fsutil.ts";
import { ProgressCounter } from "../progress.ts";
import {
  BRANCH_SOURCE_FLAGS,
  CONFIG_FLAGS,
  durationFlag,
  parse,
  replicasFor,
  wantsHelp,
} from "./common.ts";
import { parseTimestampFlag, parseTXIDFlag } from "./target_flags.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";
import { progressDisplay } from "./progress.ts";
import { printPlan, printRestored, printSkipped, restoreReport } from "./restore_report.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  ...BRANCH_SOURCE_FLAGS,
  o: { type: "string", value: "PATH", help: "output path (default: the database path itself)" },
  timestamp: {
    type: "string",
    value: "TIME",
    help: "restore the latest state at or before this RFC 3339 time (with Z or ±hh:mm)",
  },
  txid: {
    type: "string",
    value: "TXID",
    help: "restore to this TXID (16 hex digits, 0x… hex, or decimal up to 8 digits)",
  },
  "if-db-not-exists": {
    type: "bool",
    help: "do nothing (exit 0) when the output database already exists",
  },
  "if-replica-exists": { type: "bool", help: "do nothing (exit 0) when the replica has no backup" },
  force: {
    type: "bool",
    help:
      "replace an existing database (and its -wal/-shm) once the restore is complete and verified",
  },
  "integrity-check": {
    type: "string",
    value: "none|quick|full",
    help: "check run on the restored database (default quick)",
  },
  "dry-run": { type: "bool", help: "print the plan without restoring" },
  parallelism: {
    type: "string",
    value: "N",
    help:
      "files downloaded at once ahead of the one applied, from a network replica (1 to 64, default 4)",
  },
  f: {
    type: "bool",
    help: "follow: after restoring, keep the copy up to date by applying new files as they arrive",
  },
  "follow-interval": {
    type: "string",
    value: "DURATION",
    help: "how often -f polls the replica (default 1s)",
  },
  "no-progress": { type: "bool", help: "do not show progress on stderr" },
  json: {
    type: "bool",
    help: "print the result as JSON (TXID, time and checksum of the state restored, …)",
  },
};
const USAGE = `Usage:
  strata restore [flags] DB_PATH        (replicas from the config file)
  strata restore [flags] -o PATH REPLICA_URL

A replica written by Litestream v0.3 (generations/ with snapshots and WAL
segments, no ltx/) is detected and restored (latest or -timestamp); -txid and
-f do not apply to it.`;

export async function runRestore(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("need exactly one DB_PATH or REPLICA_URL");
  const target: RestoreTarget = {};
  const ts = flags.strings.get("timestamp");
  if (ts !== undefined) target.timestamp = parseTimestampFlag(ts);
  const tx = flags.strings.get("txid");
  if (tx !== undefined) target.txid = parseTXIDFlag(tx);
  if (target.txid !== undefined && target.timestamp) {
    throw new UsageError("give -timestamp or -txid, not both");
  }
  const check = (flags.strings.get("integrity-check") ?? "quick") as IntegrityCheck;
  if (!["none", "quick", "full"].includes(check)) {
    throw new UsageError(`-integrity-check must be none, quick or full`);
  }

  const follow = flags.bools.has("f");
  const followMs = durationFlag(flags, "follow-interval", DURATION_LIMITS["follow-interval"]);
  if (follow && (target.txid !== undefined || target.timestamp)) {
    throw new UsageError(
      "-f follows the latest state: it cannot be combined with -timestamp or -txid",
    );
  }
  if (follow && flags.bools.has("dry-run")) {
    throw new UsageError("-f cannot be combined with -dry-run");
  }
  const showProgress = !flags.bools.has("no-progress");
  const parallelism = flags.strings.get("parallelism");
  if (parallelism !== undefined) {
    const n = /^\d{1,2}$/.test(parallelism) ? Number(parallelism) : NaN;
    if (!(n >= 1 && n <= 64)) {
      throw new UsageError(
        `-parallelism must be a number from 1 to 64, got ${JSON.stringify(parallelism)}`,
      );
    }
    (await import("../restore/prefetch.ts")).setFilesAhead(n);
  }

  const { clients, dbPath } = await replicasFor(flags.args[0], flags);
  const out = flags.strings.has("o") ? resolve(flags.strings.get("o")!) : dbPath;
  if (!out) throw new UsageError("restoring from a replica URL needs -o PATH");

  const force = flags.bools.has("force");
  const ifDbNotExists = flags.bools.has("if-db-not-exists");
  const json = flags.bools.has("json");
  const existing = [];
  for (const p of [out, `${out}-wal`, `${out}-shm`]) if (await exists(p)) existing.push(p);
  if (existing.length > 0 && ifDbNotExists) {
    printSkipped(out, `database ${out} already exists, skipping restore`, json);
    return 0;
  }
  // a copy an earlier `restore -f` left (it recorded its position beside it) is resumed
  const resumable = follow && !force && existing.length > 0 &&
    await exists(followRecordPath(out));
  if (
    existing.length > 0 && !force && !flags.bools.has("dry-run") && !resumable
  ) {
    throw new UsageError(
      `refusing to overwrite ${existing.join(", ")}: pass -force to replace it, or -o another path`,
    );
  }

  // the first replica that can serve the target wins
  let lastError: Error | null = null;
  for (const client of clients) {
    try {
      if (resumable) {
        const state = await resumeOrRestart(out, client.location);
        if (state) {
          console.log(`resuming follow of ${out} at TXID ${formatTXID(state.txid)}`);
          await followUntilStopped(client, out, state, followMs);
          return 0;
        }
      }
      const files = await listAllFiles(client);
      const raw = files.length === 0 ? rawReaderOf(client) : null;
      if (raw && await hasV03Generations(raw)) {
        if (target.txid !== undefined) {
          throw new UsageError(
            `${client.location} is a Litestream v0.3 replica: it has generations and WAL indexes, not TXIDs, so -txid does not apply; use -timestamp`,
          );
        }
        if (follow) {
          throw new UsageError(
            `${client.location} is a Litestream v0.3 replica: -f follows strata (Litestream v0.5) replicas only; restore it once, then replicate the result with strata`,
          );
        }
        return await restoreV03(raw, target, out, {
          replace: force,
          json,
          dryRun: flags.bools.has("dry-run"),
          check,
          showProgress,
        });
      }
      if (files.length === 0 && flags.bools.has("if-replica-exists")) {
        printSkipped(out, `replica ${client.location} has no backup, nothing to restore`, json);
        return 0;
      }
      const plan = planRestore(files, target, client.location);
      if (flags.bools.has("dry-run")) {
        printPlan(out, client.location, plan, json);
        return 0;
      }
      const display = showProgress ? progressDisplay(`restore ${basename(out)}`) : null;
      const started = performance.now();
      let r;
      try {
        r = await restoreReplica(client, target, out, {
          integrityCheck: check,
          files,
          onProgress: display?.report,
          // a followed copy that no longer matches its record is restored afresh over itself
          replace: force || resumable,
        });
      } finally {
        display?.finish(r !== undefined);
      }
      printRestored(
        {
          ...restoreReport(r, client.location, target, earlierThanAsked(files, target, r.txid)),
          // Litestream's restore -json fields besides strata's
          db_path: out,
          duration_ms: Math.round(performance.now() - started),
          integrity_check: check,
        },
        json,
      );
      if (follow) {
        await writeFollowRecord(out, client.location, r.applier);
        await followUntilStopped(client, out, r.applier, followMs);
      }
      return 0;
    } catch (e) {
      if (e instanceof OutputExistsError) {
        if (!ifDbNotExists) throw e;
        // another restore won the race: its file is complete, as this one's would have been
        printSkipped(
          out,
          `database ${out} was restored by another process meanwhile, skipping`,
          json,
        );
        return 0;
      }
      lastError = e as Error;
      if (clients.length > 1) console.error(`replica ${client.location}: ${lastError.message}`);
    }
  }
  throw lastError!;
}

/** Restores a Litestream v0.3 replica (latest or `target.timestamp`). */
async function restoreV03(
  reader: RawReplicaReader,
  target: RestoreTarget,
  out: string,
  o: {
    replace: boolean;
    dryRun: boolean;
    check: IntegrityCheck;
    showProgress: boolean;
    json: boolean;
  },
): Promise<number> {
  const plan = await planV03Restore(reader, target.timestamp);
  const last = plan.wal.length ? plan.wal[plan.wal.length - 1].index : -1;
  const segments = plan.wal.flatMap((w) => w.segments);
  const time = (segments.at(-1) ?? plan.snapshot).createdAt.toISOString();
  if (o.dryRun && o.json) {
    console.log(JSON.stringify({
      path: out,
      replica: reader.location,
      dryRun: true,
      generation: plan.generation,
      time,
      bytes: plan.bytes,
      files: [plan.snapshot, ...segments].map((f) => ({ path: f.path, size: f.size })),
    }));
    return 0;
  }
  if (o.dryRun) {
    console.log(
      `restore of ${
        basename(out)
      } from Litestream v0.3 replica ${reader.location}, generation ${plan.generation}:`,
    );
    const s = plan.snapshot;
    console.log(`  snapshot ${hex8(s.index)}  ${s.size} bytes  ${s.createdAt.toISOString()}`);
    for (const w of plan.wal) {
      for (const g of w.segments) {
        console.log(
          `  wal ${hex8(g.index)} offset ${
            hex8(g.offset)
          }  ${g.size} bytes  ${g.createdAt.toISOString()}`,
        );
      }
    }
    const n = 1 + plan.wal.reduce((k, w) => k + w.segments.length, 0);
    console.log(`${n} files, ${plan.bytes} bytes`);
    return 0;
  }
  const display = o.showProgress ? progressDisplay(`restore ${basename(out)}`) : null;
  let ok = false;
  try {
    const r = await executeV03Restore(reader, plan, out, {
      integrityCheck: o.check,
      replace: o.replace,
      progress: display ? new ProgressCounter(plan.bytes, display.report) : undefined,
    });
    ok = true;
    display?.finish(true);
    if (o.json) {
      console.log(JSON.stringify({
        path: r.path,
        replica: reader.location,
        generation: r.generation,
        snapshotIndex: hex8(r.snapshotIndex),
        walIndex: last >= 0 ? hex8(last) : null,
        time,
        pageSize: r.pageSize,
        pages: r.pages,
        files: r.files,
      }));
      return 0;
    }
    console.log(
      `restored ${r.path} from Litestream v0.3 generation ${r.generation} (snapshot ${
        hex8(r.snapshotIndex)
      }${
        last >= 0 ? `, WAL through ${hex8(last)}` : ", no WAL"
      }; ${r.pages} pages of ${r.pageSize} bytes, ${r.files} files)`,
    );
    return 0;
  } finally {
    if (!ok) display?.finish(false);
  }
}

/** Follows until SIGINT/SIGTERM. */
async function followUntilStopped(
  client: ReplicaClient,
  out: string,
  state: PageApplier,
  intervalMs: number | undefined,
): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await followReplica(client, out, state, {
      intervalMs,
      signal: stop.signal,
      cache: restoreCache(),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/**
 * The state to resume following from, or null to restore afresh: a copy that
 * no longer matches its record (a crash between the copy's rename and the
 * record's, or a change by hand) is restored again, with a warning.
 */
async function resumeOrRestart(out: string, location: string): Promise<PageApplier | null> {
  try {
    return await resumeFollowState(out, location);
  } catch (e) {
    if (!(e instanceof RestoreError) || !/changed since it was followed/.test(e.message)) throw e;
    log("warn", "the followed copy does not match its record; restoring it afresh", {
      path: out,
      error: e.message,
    });
    return null;
  }
}

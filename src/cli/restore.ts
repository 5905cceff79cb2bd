/** `strata restore`: a database as of the latest state, a timestamp or a TXID. */

import { basename, resolve } from "node:path";
import { formatChecksum, formatTimestamp, formatTXID } from "../ltx/mod.ts";
import {
  type IntegrityCheck,
  listAllFiles,
  planRestore,
  type RestoreTarget,
} from "../restore/mod.ts";
import { restoreReplica } from "../branch/mod.ts";
import { exists } from "../fsutil.ts";
import { CONFIG_FLAGS, parse, replicasFor, wantsHelp } from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = {
  ...CONFIG_FLAGS,
  o: { type: "string", value: "PATH", help: "output path (default: the database path itself)" },
  timestamp: {
    type: "string",
    value: "TIME",
    help: "restore the latest state at or before this RFC 3339 time",
  },
  txid: { type: "string", value: "TXID", help: "restore to this TXID (16 hex digits or decimal)" },
  "if-db-not-exists": {
    type: "bool",
    help: "do nothing (exit 0) when the output database already exists",
  },
  "if-replica-exists": { type: "bool", help: "do nothing (exit 0) when the replica has no backup" },
  force: { type: "bool", help: "overwrite an existing database (and remove its -wal/-shm)" },
  "integrity-check": {
    type: "string",
    value: "none|quick|full",
    help: "check run on the restored database (default quick)",
  },
  "dry-run": { type: "bool", help: "print the plan without restoring" },
};
const USAGE = `Usage:
  strata restore [flags] DB_PATH        (replicas from the config file)
  strata restore [flags] -o PATH REPLICA_URL`;

export function parseTXIDFlag(s: string): bigint {
  if (/^[0-9a-f]{16}$/i.test(s)) return BigInt("0x" + s);
  if (/^\d+$/.test(s)) return BigInt(s);
  if (/^0x[0-9a-f]+$/i.test(s)) return BigInt(s);
  throw new UsageError(`invalid -txid ${JSON.stringify(s)}: use 16 hex digits or a decimal number`);
}

export async function runRestore(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("need exactly one DB_PATH or REPLICA_URL");
  const target: RestoreTarget = {};
  const ts = flags.strings.get("timestamp");
  if (ts !== undefined) {
    const d = new Date(ts);
    if (!/^\d{4}-\d\d-\d\dT/.test(ts) || isNaN(d.getTime())) {
      throw new UsageError(
        `invalid -timestamp ${JSON.stringify(ts)}: use RFC 3339, e.g. 2026-11-22T10:00:00Z`,
      );
    }
    target.timestamp = d;
  }
  const tx = flags.strings.get("txid");
  if (tx !== undefined) target.txid = parseTXIDFlag(tx);
  if (target.txid !== undefined && target.timestamp) {
    throw new UsageError("give -timestamp or -txid, not both");
  }
  const check = (flags.strings.get("integrity-check") ?? "quick") as IntegrityCheck;
  if (!["none", "quick", "full"].includes(check)) {
    throw new UsageError(`-integrity-check must be none, quick or full`);
  }

  const { clients, dbPath } = await replicasFor(flags.args[0], flags);
  const out = flags.strings.has("o") ? resolve(flags.strings.get("o")!) : dbPath;
  if (!out) throw new UsageError("restoring from a replica URL needs -o PATH");

  const existing = [];
  for (const p of [out, `${out}-wal`, `${out}-shm`]) if (await exists(p)) existing.push(p);
  if (existing.length > 0 && flags.bools.has("if-db-not-exists")) {
    console.log(`database ${out} already exists, skipping restore`);
    return 0;
  }
  if (existing.length > 0 && !flags.bools.has("force") && !flags.bools.has("dry-run")) {
    throw new UsageError(
      `refusing to overwrite ${existing.join(", ")}: pass -force to replace it, or -o another path`,
    );
  }

  // the first replica that can serve the target wins
  let lastError: Error | null = null;
  for (const client of clients) {
    try {
      const files = await listAllFiles(client);
      if (files.length === 0 && flags.bools.has("if-replica-exists")) {
        console.log(`replica ${client.location} has no backup, nothing to restore`);
        return 0;
      }
      const plan = planRestore(files, target, client.location);
      if (flags.bools.has("dry-run")) {
        console.log(
          `restore of ${basename(out)} to TXID ${formatTXID(plan.txid)} from ${client.location}:`,
        );
        let total = 0;
        for (const f of plan.files) {
          total += f.size;
          console.log(
            `  level ${f.level}  ${formatTXID(f.minTXID)}-${
              formatTXID(f.maxTXID)
            }  ${f.size} bytes  ${formatTimestamp(f.createdAt.getTime())}`,
          );
        }
        console.log(`${plan.files.length} files, ${total} bytes`);
        return 0;
      }
      if (existing.length > 0) { for (const p of existing) await Deno.remove(p); }
      const r = await restoreReplica(client, target, out, { integrityCheck: check, files });
      console.log(
        `restored ${r.path} to TXID ${
          formatTXID(r.txid)
        } (${r.pages} pages of ${r.pageSize} bytes, ${r.files} files, checksum ${
          formatChecksum(r.checksum)
        })`,
      );
      return 0;
    } catch (e) {
      lastError = e as Error;
      if (clients.length > 1) console.error(`replica ${client.location}: ${lastError.message}`);
    }
  }
  throw lastError!;
}

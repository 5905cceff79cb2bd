/** `strata branches`: the branches made from a replica, with their base points. */

import { formatTXID } from "../ltx/mod.ts";
import { parseReplicaUrl } from "../config/replica_url.ts";
import { listBranches, readBranchManifest } from "../branch/mod.ts";
import { clientFor, parse, wantsHelp } from "./common.ts";
import { type FlagSpecs, UsageError } from "./flags.ts";

const FLAGS: FlagSpecs = { json: { type: "bool", help: "print JSON" } };
const USAGE = `Usage: strata branches [-json] REPLICA

Lists the branches made from REPLICA with "strata clone" (each one's base
TXID and time, when it was made, how many source files it pins), and, when
REPLICA is itself a branch, what it is a branch of.`;

export async function runBranches(argv: string[]): Promise<number> {
  if (wantsHelp(argv, USAGE, FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  if (flags.args.length !== 1) throw new UsageError("need exactly one REPLICA");
  const client = clientFor(parseReplicaUrl(flags.args[0]));
  const self = await readBranchManifest(client);
  const branches = await listBranches(client);
  const rows = branches.map((m) => ({
    branch: m.dest,
    id: formatTXID(m.id),
    txid: formatTXID(m.base.txid),
    time: m.base.time.toISOString(),
    created: m.createdAt.toISOString(),
    files: m.files.length,
    bytes: m.files.reduce((s, f) => s + f.size, 0),
  }));
  if (flags.bools.has("json")) {
    console.log(JSON.stringify({
      branchOf: self ? { source: self.source, txid: formatTXID(self.base.txid) } : null,
      branches: rows,
    }));
    return 0;
  }
  if (self) {
    console.log(
      `${client.location} is a branch of ${self.source} at TXID ${formatTXID(self.base.txid)} ` +
        `(${self.base.time.toISOString()}), made ${self.createdAt.toISOString()}`,
    );
  }
  if (rows.length === 0) {
    console.log(`no branches of ${client.location}`);
    return 0;
  }
  for (const r of rows) {
    console.log(
      `${r.branch}  base TXID ${r.txid} (${r.time})  created ${r.created}  pins ${r.files} files, ${r.bytes} bytes`,
    );
  }
  return 0;
}

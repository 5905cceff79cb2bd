/** `strata databases`: the configured databases and their replicas (`-json`: as Litestream's). */

import { CONFIG_FLAGS, parse, readConfig, wantsHelp } from "./common.ts";
import type { FlagSpecs } from "./flags.ts";

const FLAGS: FlagSpecs = { ...CONFIG_FLAGS, json: { type: "bool", help: "print JSON" } };

export async function runDatabases(argv: string[]): Promise<number> {
  if (wantsHelp(argv, "Usage: strata databases [-config PATH] [-json]", FLAGS)) return 0;
  const flags = parse(argv, FLAGS);
  const cfg = await readConfig(flags, true);
  const rows = [
    ...cfg!.dbs.map((db) => ({ path: db.path, replicas: db.replicas, dir: false })),
    ...cfg!.dirs.map((d) => ({
      path: `${d.dir}/${d.recursive ? "**/" : ""}${d.pattern}`,
      replicas: d.replicas,
      dir: true,
    })),
  ];
  if (flags.bools.has("json")) {
    // Litestream's fields (path, replica: the first replica's type), and every replica
    console.log(JSON.stringify(rows.map((r) => ({
      path: r.path,
      replica: r.replicas[0]?.type ?? null,
      replicas: r.replicas.map((x) => ({ type: x.type, path: x.path })),
    }))));
    return 0;
  }
  console.log("path\treplicas");
  for (const r of rows) {
    console.log(
      `${r.path}\t${r.replicas.map((x) => `${x.type}:${x.path}${r.dir ? "/…" : ""}`).join(",")}`,
    );
  }
  return 0;
}

/** `strata databases`: the configured databases and their replicas. */

import { CONFIG_FLAGS, parse, readConfig, wantsHelp } from "./common.ts";

export async function runDatabases(argv: string[]): Promise<number> {
  if (wantsHelp(argv, "Usage: strata databases [-config PATH]", CONFIG_FLAGS)) return 0;
  const flags = parse(argv, CONFIG_FLAGS);
  const cfg = await readConfig(flags, true);
  console.log("path\treplicas");
  for (const db of cfg!.dbs) {
    console.log(`${db.path}\t${db.replicas.map((r) => `${r.type}:${r.path}`).join(",")}`);
  }
  for (const d of cfg!.dirs) {
    const where = `${d.dir}/${d.recursive ? "**/" : ""}${d.pattern}`;
    console.log(`${where}\t${d.replicas.map((r) => `${r.type}:${r.path}/…`).join(",")}`);
  }
  return 0;
}

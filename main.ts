/** strata: streaming backup and point-in-time restore for SQLite. */

import { main } from "./src/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

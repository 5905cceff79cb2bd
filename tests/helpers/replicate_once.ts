/**
 * Runs one `strata replicate` of DB to a directory replica in this process
 * (start, capture and sync twice, stop), and runs an app's write (a Python
 * process, waited for) at the exact moment strata logs a chosen message:
 * a deterministic interleaving of the app with strata's capture.
 *
 *   deno run -A replicate_once.ts DB REPLICA_DIR TRIGGER PYTHON_CODE
 *
 * PYTHON_CODE runs as `python3 -c PYTHON_CODE DB`. Prints the final TXID.
 */

import { DbReplication } from "../../src/replicate/mod.ts";
import { FileReplicaClient } from "../../src/storage/mod.ts";

const [db, replica, trigger, code] = Deno.args;
let fired = false;
const print = console.error.bind(console);
console.error = (...args: unknown[]) => {
  print(...args);
  if (fired || !String(args[0]).includes(trigger)) return;
  fired = true;
  // synchronous: strata's event loop waits until the app's commit is done
  const r = new Deno.Command("python3", { args: ["-c", code, db], stderr: "piped" }).outputSync();
  if (r.code !== 0) throw new Error(`app write failed: ${new TextDecoder().decode(r.stderr)}`);
};

const rep = new DbReplication({
  dbPath: db,
  monitorIntervalMs: 3_600_000, // captures run below, not on a timer
  replicas: [{ client: new FileReplicaClient(replica), syncIntervalMs: 3_600_000 }],
});
await rep.start();
await rep.syncAll();
await rep.syncAll();
await rep.stop();
if (!fired) throw new Error(`strata never logged ${JSON.stringify(trigger)}`);
console.log(rep.monitor.position.txid.toString());

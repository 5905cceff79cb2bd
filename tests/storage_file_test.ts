/** The file replica client against the shared storage conformance suite. */

import { FileReplicaClient } from "../src/storage/file_client.ts";
import { conformanceTests } from "./helpers/conformance.ts";

conformanceTests("file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-file-conf-" });
  return {
    client: new FileReplicaClient(dir),
    close: () => Deno.remove(dir, { recursive: true }),
  };
});

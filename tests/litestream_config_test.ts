/**
 * A Litestream setup works unchanged (issue 18): where the config is found,
 * and what becomes of the keys Litestream accepts.
 */

import { defaultConfigPath } from "../src/config/config.ts";
import { assertEquals } from "./helpers/assert.ts";

Deno.test("config path: $STRATA_CONFIG, $LITESTREAM_CONFIG, /etc/strata.yml, /etc/litestream.yml", () => {
  const none = () => false;
  const only = (p: string) => (q: string) => q === p;
  assertEquals(
    defaultConfigPath({ STRATA_CONFIG: "/a.yml", LITESTREAM_CONFIG: "/b.yml" }, none),
    "/a.yml",
  );
  assertEquals(defaultConfigPath({ LITESTREAM_CONFIG: "/b.yml" }, none), "/b.yml");
  assertEquals(defaultConfigPath({}, only("/etc/litestream.yml")), "/etc/litestream.yml");
  assertEquals(defaultConfigPath({}, (p) => p.startsWith("/etc/")), "/etc/strata.yml");
  // neither exists: the error names strata's own default
  assertEquals(defaultConfigPath({}, none), "/etc/strata.yml");
});

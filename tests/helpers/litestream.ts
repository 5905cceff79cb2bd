/**
 * The released Litestream v0.3.13 binary (npm `@flydotio/litestream-linux-x64`),
 * the peer whose replicas strata must restore; installed once into
 * ~/.cache/strata-test/.
 */

import { ensureNpmPackage } from "./test_tools.ts";

export const LITESTREAM_PACKAGE = "@flydotio/litestream-linux-x64";
export const LITESTREAM_PACKAGE_VERSION = "1.0.1";

/** The path of the `litestream` executable, installed with npm on first use. */
export function ensureLitestream(): Promise<string> {
  return ensureNpmPackage(LITESTREAM_PACKAGE, LITESTREAM_PACKAGE_VERSION, "litestream");
}

/** Configuration: what other folders may use. */
export * from "./config.ts";
export * from "./duration.ts";
export * from "./limits.ts";
export * from "./replica_url.ts";
export * from "./dir_config.ts";
export * from "./glob.ts";
export { canonicalPath, findOverlap } from "./overlap.ts";

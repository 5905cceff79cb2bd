/** Restore: what other folders may use. */
export * from "./execute.ts";
export * from "./plan.ts";
export * from "./cache.ts";

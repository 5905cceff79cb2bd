/** Restore: what other folders may use. */
export * from "./apply.ts";
export * from "./execute.ts";
export * from "./output.ts";
export * from "./verified_restore.ts";
export * from "./db_size_check.ts";
export * from "./plan.ts";
export * from "./point.ts";
export * from "./cache.ts";
export * from "./v03_execute.ts";
export * from "./follow.ts";

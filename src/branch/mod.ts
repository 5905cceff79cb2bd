/** Branches (instant point-in-time clones of a replica): what other folders may use. */
export * from "./manifest.ts";
export * from "./registry.ts";
export * from "./branch_client.ts";
export * from "./clone.ts";
export * from "./seed.ts";
export * from "./restore_branch.ts";

/** Replication: what other folders may use. */
export * from "./db_replication.ts";
export * from "./replicator.ts";
export * from "./compactor.ts";
export * from "./replica_index.ts";
export * from "./positions.ts";
export * from "./lease.ts";
export * from "./db_set.ts";
export * from "./directory.ts";
export * from "./verify.ts";

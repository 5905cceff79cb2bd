/** Replication: what other folders may use. */
export * from "./db_replication.ts";
export * from "./replicator.ts";

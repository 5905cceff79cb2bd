/** Storage clients: what other folders may use. */
export * from "./client.ts";
export * from "./file_client.ts";
export * from "./lease_store.ts";
export * from "./litestream_v03.ts";
export * from "./forwarding_client.ts";
export * from "./trailer.ts";

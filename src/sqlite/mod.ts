/** SQLite-facing helpers: what other folders may use. */
export * from "./connection.ts";
export * from "./files.ts";
export * from "./wal.ts";

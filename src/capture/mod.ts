/** Capture: what other folders may use. */
export * from "./monitor.ts";
export * from "./live_checksum.ts";

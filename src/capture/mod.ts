/** Capture: what other folders may use. */
export * from "./monitor.ts";

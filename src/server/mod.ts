/** The metrics endpoint and the control socket: what other folders may use. */
export * from "./metrics.ts";
export * from "./control.ts";

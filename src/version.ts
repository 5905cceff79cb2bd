/** The strata version, printed by `strata version`. */
export const VERSION = "0.1.0-dev";

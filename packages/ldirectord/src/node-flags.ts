/**
 * The Node flags the ldirectord daemon runs with: bin/ldirectord (the sh launcher), the detached
 * daemon child of `ldirectord start` and the checks benchmark all use this list, so that what is
 * measured is what runs.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = [];

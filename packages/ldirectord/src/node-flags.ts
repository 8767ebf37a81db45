/**
 * The Node flags the ldirectord daemon runs with. bin/ldirectord (the sh launcher), the shebang of
 * bin/ldirectord.ts, the detached daemon child of `ldirectord start` and the checks benchmark all
 * use this list (cli.test.ts checks that the launchers agree with it), so what is measured is what
 * runs.
 *
 * Why (CHECKS.md, "Memory"): at 10,000 reals the daemon's live heap is ~40 MB, but with V8's
 * defaults a check loop allocating 2,000 short-lived connections a second grows the young
 * generation to ~100 MB and lets the old one reach 3× its live size before collecting, for an RSS
 * of ~270 MB. A 4 MB semi-space keeps the young generation at ~12 MB (the objects of a check die
 * within milliseconds, so scavenges stay cheap), and a heap growing factor of 1.5 collects the old
 * generation at 1.5× its live size instead of up to 4×; together ~155 MB, for about the same CPU.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=50'];

/**
 * Node's compile cache for the daemon (the directory the embedded balancer's launcher uses too):
 * from the second start on, the type-stripped and compiled modules come from it and the
 * TypeScript stripper, whose WebAssembly heap otherwise stays for the life of the process, is
 * never loaded — about 25 MB less RSS. NODE_COMPILE_CACHE set by the caller wins (an unwritable
 * path turns it off; Node then strips again).
 */
export const COMPILE_CACHE_DIR = new URL('../../../node_modules/.cache/tandem-compile', import.meta.url).pathname;

/**
 * glibc's malloc arenas for the daemon: one. The first check pass of thousands of reals runs partly
 * in a worker thread (checks/first-pass.ts), and glibc gives that thread an arena of its own whose
 * freed pages it keeps after the thread has ended: 10-30 MB of RSS for the daemon's life. With one
 * arena they go back to the main thread's. Measured at 10,000 reals (CHECKS.md): steady RSS
 * 124-126 MB instead of 133-164 MB, the start no slower.
 */
export const DAEMON_MALLOC_ARENA_MAX = '1';

/** The environment a daemon process is started with: the caller's, plus NODE_COMPILE_CACHE and MALLOC_ARENA_MAX unless they are set. */
export function daemonEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return { ...env, NODE_COMPILE_CACHE: env.NODE_COMPILE_CACHE ?? COMPILE_CACHE_DIR, MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? DAEMON_MALLOC_ARENA_MAX };
}

#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=4 --heap-growing-percent=50
// (the flags are DAEMON_NODE_FLAGS, the arena count DAEMON_MALLOC_ARENA_MAX of src/node-flags.ts)
// `ldirectord`: see packages/ldirectord/src/cli.ts and README.md.
import { main } from '../src/cli.ts';

// Exit explicitly: after `start` the detached daemon child must not keep this process waiting.
// stdout and stderr are synchronous for files and pipes, so nothing written is lost.
process.exit(await main(process.argv.slice(2)));

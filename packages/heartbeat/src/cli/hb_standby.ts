/**
 * `hb_standby` and `hb_takeover [all|foreign|local|failback]`: send the request on the control socket
 * and return at once, as the real scripts do with heartbeat's FIFO. The resource manager carries it
 * out (ask_resources / hb_takeover on the wire). Which one runs is taken from the program name, or
 * from `--takeover`.
 */
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '@tandem/core';
import { parseStandbyArgs, socketFrom } from '../control.ts';

export async function main(prog: string, argv: readonly string[]): Promise<number> {
  const { socket, rest } = socketFrom([...argv]);
  const takeover = rest[0] === '--takeover' ? (rest.shift(), true) : basename(prog).startsWith('hb_takeover');
  const name = takeover ? 'hb_takeover' : 'hb_standby';
  const shown = prog.includes('/') ? prog : name;
  const parsed = parseStandbyArgs(shown, rest);
  if ('code' in parsed) {
    process.stdout.write(parsed.stdout);
    return parsed.code;
  }
  try {
    const r = await controlRequest(socket, { cmd: takeover ? 'takeover' : 'standby', resources: parsed.resources }, 10_000);
    if (r.ok) return 0;
    process.stderr.write(`${name}: ${r.error}\n`);
    return 1;
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.env.TANDEM_PROG ?? process.argv[1], process.argv.slice(2)).then((code) => { process.exitCode = code; });
}

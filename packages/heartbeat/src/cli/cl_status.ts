/**
 * `cl_status`: asks the daemon for its status on the control socket and prints what the real
 * cl_status prints (see control.ts for the texts and exit codes). `--socket PATH` or
 * $TANDEM_HB_SOCKET chooses the socket.
 */
import { fileURLToPath } from 'node:url';
import { clStatus, fetchStatus, socketFrom } from '../control.ts';

export async function main(argv: readonly string[]): Promise<number> {
  const { socket, rest } = socketFrom([...argv]);
  const needsDaemon = rest.length > 0;
  const status = needsDaemon ? await fetchStatus(socket) : undefined;
  const r = clStatus(rest, status);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.code;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}

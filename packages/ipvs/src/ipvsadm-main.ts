// The tandem-ipvsadm process: standard streams, the socket, the exit code (logic in cli.ts).
import { runIpvsadm } from './cli.ts';
import { socketClient } from './client.ts';
import { socketPath } from './wire.ts';
import { createNameResolver } from './names.ts';

const path = socketPath();
const chunks: string[] = [];
const code = await runIpvsadm(
  process.argv.slice(2),
  {
    out: (s) => chunks.push(s),
    err: (s) => process.stderr.write(s),
    stdin: async () => {
      let text = '';
      process.stdin.setEncoding('utf8');
      for await (const c of process.stdin) text += c as string;
      return text;
    },
  },
  // ipvsadm names itself by its argv[0]: the link's path, or what bin/ipvsadm was called as.
  { prog: process.env.TANDEM_IPVSADM_PROG ?? process.argv[1] ?? 'ipvsadm', client: () => socketClient(path), names: createNameResolver(), socketPath: path },
);
if (chunks.length > 0) process.stdout.write(chunks.join(''));
process.exitCode = code;

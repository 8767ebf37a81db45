// What Node itself allows a TCP proxy on one core, for bench/dataplane.ts: the least a proxy can do
// on Node 24's own socket bindings (the layer under net.Socket that tandem's raw engine also uses):
// accept, connect round robin, and per chunk one read callback and one write, writes batched per
// event-loop turn as tandem's engine does. No table, scheduler, counters, backpressure, half-close
// or error handling, so it is not a balancer: it is the floor under tandem's figures, measured in
// the same run.
//   node bench/_dataplane-floor.ts VIP PORT SOURCE REAL1 REAL2 ...   (REAL = addr:port)
// Prints `READY` once listening; ends when stdin closes.
const pb = (process as unknown as { binding(name: string): any }).binding;
const { TCP, TCPConnectWrap, constants } = pb('tcp_wrap');
const sw = pb('stream_wrap');
const state: Int32Array = sw.streamBaseState;
const kRead: number = sw.kReadBytesOrError;
const kAsync: number = sw.kLastWriteWasAsync;
const readBuf = Buffer.allocUnsafe(65536);

const [vip, port, source, ...realArgs] = process.argv.slice(2);
const reals = realArgs.map((r) => [r.slice(0, r.lastIndexOf(':')), Number(r.slice(r.lastIndexOf(':') + 1))] as const);
let next = 0;
let req = new sw.WriteWrap();
const pending: any[] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  for (let i = 0; i < pending.length; i += 2) {
    const dst = pending[i];
    const data = pending[i + 1];
    if (dst.dead) continue;
    dst.writeBuffer(req, data);
    if (state[kAsync]) {
      req.buffer = data;
      req.oncomplete = () => {};
      req = new sw.WriteWrap();
    }
  }
  pending.length = 0;
}

function onRead(this: any): void {
  const n = state[kRead];
  if (n > 0) {
    pending.push(this.peer, Buffer.from(readBuf.subarray(0, n)));
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return;
  }
  if (n === 0) return;
  if (pending.length) flush();
  this.dead = this.peer.dead = true;
  this.close();
  this.peer.close();
}

const server = new TCP(constants.SERVER);
if (server.bind(vip, Number(port)) !== 0 || server.listen(4096) !== 0) throw new Error(`cannot listen on ${vip}:${port}`);
server.onconnection = (err: number, cli: any) => {
  if (err !== 0) return;
  const up = new TCP(constants.SOCKET);
  up.bind(source, 0);
  cli.setNoDelay(true);
  up.setNoDelay(true);
  cli.peer = up;
  up.peer = cli;
  const [addr, p] = reals[next++ % reals.length]!;
  const creq = new TCPConnectWrap();
  creq.oncomplete = (status: number) => {
    if (status < 0) {
      cli.close();
      up.close();
      return;
    }
    cli.onread = onRead;
    up.onread = onRead;
    cli.useUserBuffer(readBuf);
    up.useUserBuffer(readBuf);
    cli.readStart();
    up.readStart();
  };
  up.connect(creq, addr, p);
};
console.log('READY');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

import dgram from 'node:dgram';
import net from 'node:net';

/**
 * One UDP request and its answer (dns, sip, radius). `accept` filters out stray datagrams; the
 * socket is closed when an answer is accepted or the signal fires. An ICMP port unreachable shows
 * up as ECONNREFUSED because the socket is connected.
 */
export function udpExchange(host: string, port: number, payload: Buffer, signal: AbortSignal, accept: (msg: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (err: unknown, msg?: Buffer): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      try {
        sock.close();
      } catch {
        // already closed
      }
      if (msg) resolve(msg);
      else reject(err);
    };
    const onAbort = (): void => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (err) => finish(err));
    sock.on('message', (msg) => {
      if (accept(msg)) finish(undefined, msg);
    });
    sock.connect(port, host, () => {
      sock.send(payload, (err) => {
        if (err) finish(err);
      });
    });
  });
}


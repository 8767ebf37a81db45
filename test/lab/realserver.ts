// A real server of the lab: answers every HTTP request with its own name, and /test.html with the
// page ldirectord's negotiate check expects ("Test Page"). Run inside the real server's namespace:
//   node realserver.ts NAME [PORT [ADDRESS]]
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';

const name = process.argv[2] ?? 'rs';
const port = Number(process.argv[3] ?? 80);
const bindAddress = process.argv[4] ?? '0.0.0.0';
let served = 0;
const server = createServer((req, res) => {
  served++;
  const body = req.url === '/test.html' ? `<html><body>Test Page from ${name}</body></html>\n` : `${name}\n`;
  res.writeHead(200, { 'content-type': 'text/html', 'x-real-server': name, 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 5000;
server.listen(port, bindAddress, () => process.stdout.write(`listening ${name} ${port}\n`));
// UDP on the same port: a datagram `ID ...` is answered with `ID NAME` (the failover probe's protocol).
const udp = createSocket(bindAddress.includes(':') ? 'udp6' : 'udp4');
udp.on('message', (msg, rinfo) => {
  served++;
  udp.send(`${msg.toString().split(' ')[0]} ${name}`, rinfo.port, rinfo.address);
});
udp.on('error', () => udp.close());
udp.bind(port, bindAddress);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
setInterval(() => process.stdout.write(`served ${served}\n`), 1000).unref();

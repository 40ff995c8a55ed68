// baselines.ts — the floors portlab is measured against, as a child process: a bare Node pipe proxy (L4) and plain
// http-proxy with a keep-alive agent (L7). Both forward to the same backend as portlab.
import http from 'node:http';
import net from 'node:net';
import httpProxy from 'http-proxy';
import { BENCH_PORTS } from './plan.js';

const [pipeHost, httpHost, backend] = process.argv.slice(2) as [string, string, string];

/** pipeProxy is the simplest correct Node TCP proxy: noDelay both ways and pipe, nothing else. */
function pipeProxy(port: number, targetPort: number): Promise<void> {
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: backend, port: targetPort, noDelay: true, allowHalfOpen: true });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => server.listen(port, pipeHost, () => resolve()));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://${backend}:${BENCH_PORTS.web}`, agent });
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
});
const httpServer = http.createServer((req, res) => proxy.web(req, res));

await Promise.all([
  pipeProxy(BENCH_PORTS.echo, BENCH_PORTS.echo),
  pipeProxy(BENCH_PORTS.web, BENCH_PORTS.web),
  pipeProxy(BENCH_PORTS.sink, BENCH_PORTS.sink),
  new Promise<void>((resolve) => httpServer.listen(BENCH_PORTS.web, httpHost, () => resolve())),
]);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));

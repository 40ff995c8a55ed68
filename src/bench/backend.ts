// backend.ts — the benchmark's backend process: TCP echo, an HTTP server, and a byte sink, on one loopback address.
// Run as a child of `portlab bench`; it prints "ready" and exits on SIGTERM.
import http from 'node:http';
import net from 'node:net';
import { BENCH_PORTS } from './plan.js';

const host = process.argv[2] ?? '127.77.50.1';
const body = Buffer.from('{"ok":true,"pod":"bench-backend"}');

const echo = net.createServer({ noDelay: true }, (s) => {
  s.on('error', () => {});
  s.pipe(s);
});

// keepAliveTimeout longer than any proxy's idle pool, so no proxy reuses a socket this side is closing.
const web = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body));
});

// sink: the client sends an 8-byte length, then that many bytes; the sink answers one byte when all arrived, and the
// next transfer may follow on the same connection.
const sink = net.createServer({ noDelay: true }, (s) => {
  s.on('error', () => {});
  let header = Buffer.alloc(0);
  let remaining = -1;
  s.on('data', (chunk: Buffer) => {
    while (chunk.length > 0) {
      if (remaining < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 8) return;
        remaining = Number(header.readBigUInt64BE(0));
        chunk = header.subarray(8);
        header = Buffer.alloc(0);
      }
      const take = Math.min(remaining, chunk.length);
      remaining -= take;
      chunk = chunk.subarray(take);
      if (remaining === 0) {
        remaining = -1;
        s.write('k');
      }
    }
  });
  s.on('end', () => s.end());
});

await Promise.all(
  [
    [echo, BENCH_PORTS.echo],
    [web, BENCH_PORTS.web],
    [sink, BENCH_PORTS.sink],
  ].map(([server, port]) => new Promise<void>((resolve) => (server as net.Server).listen(port as number, host, () => resolve()))),
);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));

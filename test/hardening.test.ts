// Attacks and accidents that must cost nothing: the admin API only its user can drive, bounded feeds, a closed
// terminal, headers that try to strip portlab's own, methods and upgrades a proxy must refuse cleanly.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { selectorless, tcpBackend } from './helpers/backends.js';
import { runCli, startCli } from './helpers/cli.js';
import { CLI, ROOT, SEED, range, sha256, startPortlab, statusLine, tempManifest, waitFor } from './helpers/portlab.js';

/** raw sends one HTTP request on its own socket and resolves with everything the server sent before closing. */
function raw(host: string, port: number, text: string, timeoutMs = 8000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('error', () => resolve(data));
    s.on('close', () => resolve(data));
    s.setTimeout(timeoutMs, () => s.destroy());
    s.write(text);
  });
}

test('the admin API answers only a Host that names it, and changes state only for requests a web page cannot forge', async (t) => {
  const r = range(182);
  const run = await startPortlab(r, [SEED]);
  const [host, port] = r.admin.split(':') as [string, string];
  try {
    const rebound = await raw(host, Number(port), `GET /api/topology HTTP/1.1\r\nHost: rebind.attacker.example:${port}\r\nConnection: close\r\n\r\n`);
    t.regex(rebound, /^HTTP\/1\.1 403 /, 'DNS rebinding: a foreign Host is refused');
    t.regex(await raw(host, Number(port), `GET /metrics HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /);
    const pod = run.portlab.proxier.state!.pods[0]!.name;
    const form = `POST /api/pods/${pod}/kill HTTP/1.1\r\nHost: ${r.admin}\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    t.regex(await raw(host, Number(port), form), /^HTTP\/1\.1 403 [^]*Origin http:\/\/evil\.example is not this admin listener/);
    const bare = `POST /api/pods/${pod}/kill HTTP/1.1\r\nHost: ${r.admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
    t.regex(await raw(host, Number(port), bare), /^HTTP\/1\.1 403 [^]*needs the x-portlab-client header/);
    t.true(run.portlab.proxier.state!.pods[0]!.running, 'the pod was not killed');
    t.regex(await raw(host, Number(port), `GET /api/pods/%E0%A4%A/kill HTTP/1.1\r\nHost: ${r.admin}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 400 /);
    const ok = await request(`http://${r.admin}/api/pods/${pod}/unready`, { method: 'POST', headers: { 'x-portlab-client': 'test', origin: `http://${r.admin}` } });
    t.is(ok.statusCode, 200, 'a same-origin request with the header is allowed');
    await ok.body.dump();
  } finally {
    await run.close();
  }
});

test('dashboard feeds: a client that never reads costs bounded memory, is told what it missed, and feeds are capped', async (t) => {
  const r = range(183);
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--quiet']);
  const [host, port] = r.admin.split(':') as [string, string];
  const stalled: net.Socket[] = [];
  try {
    // Twenty clients open the feed and never read it.
    for (let i = 0; i < 20; i++) {
      const s = net.connect({ host, port: Number(port) });
      s.on('error', () => {});
      s.write(`GET /events HTTP/1.1\r\nHost: ${r.admin}\r\n\r\n`);
      s.pause();
      stalled.push(s);
    }
    const before = cli.rssBytes();
    // 1,200 requests whose events are 12 KB each: 14 MB per feed, more than the kernel's socket buffers hold.
    const longPath = `/${'x'.repeat(12_000)}`;
    for (let i = 0; i < 1200; i += 8) {
      await Promise.all(Array.from({ length: 8 }, async () => (await request(`http://${r.node}:30000${longPath}`)).body.dump()));
    }
    const grew = cli.rssBytes() - before;
    t.true(grew < 80 * 1024 * 1024, `RSS grew ${(grew / 1048576).toFixed(1)} MiB with 20 stalled feeds`);
    const metrics = await (await request(`http://${r.admin}/metrics`)).body.text();
    const dropped = Number(/^portlab_feed_dropped_events_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    t.true(dropped > 0, 'events were dropped for the stalled clients');
    // A stalled client that starts reading is told how many events it missed.
    const reader = stalled[0]!;
    let text = '';
    reader.on('data', (d) => (text += d));
    reader.resume();
    await request(`http://${r.node}:30000/after`).then((res) => res.body.dump());
    await waitFor(() => /event: dropped\ndata: \{"count":\d+\}/.test(text), 'a dropped event', 20_000);
    // The cap: 12 more feeds fill it to 32; the 33rd is refused.
    for (let i = 0; i < 12; i++) {
      const s = net.connect({ host, port: Number(port) });
      s.on('error', () => {});
      s.write(`GET /events HTTP/1.1\r\nHost: ${r.admin}\r\n\r\n`);
      stalled.push(s);
    }
    await waitFor(async () => /^HTTP\/1\.1 503 /.test(await raw(host, Number(port), `GET /events HTTP/1.1\r\nHost: ${r.admin}\r\nConnection: close\r\n\r\n`, 2000)), 'the 33rd feed to be refused', 10_000);
    t.regex(await raw(host, Number(port), `GET /healthz HTTP/1.1\r\nHost: ${r.admin}\r\nConnection: close\r\n\r\n`), /^HTTP\/1\.1 200 /, 'the admin listener still answers');
  } finally {
    for (const s of stalled) s.destroy();
    await cli.stop();
  }
});

test('SIGHUP (a closed terminal) drains and exits 0, and takes its hosts block out of the file', async (t) => {
  const r = range(184);
  const hosts = await tempManifest('127.0.0.1 localhost\n', 'hosts');
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--write-hosts', '--hosts-file', hosts.file, '--drain-timeout', '0']);
  try {
    t.regex(readFileSync(hosts.file, 'utf8'), /my-service\.default\.svc\.cluster\.local/);
    t.is(await cli.stop('SIGHUP'), 0, cli.errors());
    t.regex(cli.errors(), /SIGHUP: draining/);
    t.is(readFileSync(hosts.file, 'utf8'), '127.0.0.1 localhost\n');
  } finally {
    await hosts.cleanup();
  }
});

test('a Connection header cannot strip X-Forwarded-For or the framing: the pod gets the client and the whole body', async (t) => {
  const r = range(185);
  const run = await startPortlab(r, [SEED]);
  try {
    const body = 'hello pod';
    const answer = await raw(
      r.node,
      30000,
      `POST /up HTTP/1.1\r\nHost: x\r\nConnection: close, x-forwarded-for, content-length, x-custom\r\nX-Forwarded-For: 10.9.9.9\r\nX-Custom: gone\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string>; bodyBytes: number; bodySha256: string };
    t.regex(answer, /^HTTP\/1\.1 200 /);
    t.is(json.headers['x-forwarded-for'], '127.0.0.1', 'the client named it hop-by-hop: its own value went, portlab\'s came');
    t.false('x-custom' in json.headers);
    t.is(json.bodyBytes, body.length);
    t.is(json.bodySha256, sha256(body));
  } finally {
    await run.close();
  }
});

test('CONNECT on an L7 port gets 405, and the connection is not left open', async (t) => {
  const r = range(186);
  const run = await startPortlab(r, [SEED]);
  try {
    t.is(await statusLine(r.node, 30000, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', { keepOpen: true }), 'HTTP/1.1 405 Method Not Allowed');
  } finally {
    await run.close();
  }
});

test('an upgrade the pod answers with 200 and a close releases the client\'s descriptor and its active count', async (t) => {
  const r = range(187);
  // A pod that answers every upgrade with a plain 200, then closes.
  const pod = await tcpBackend(r.backend(), 5000, (s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno'));
  });
  const m = await tempManifest(
    `apiVersion: v1\nkind: Service\nmetadata: {name: ws}\nspec:\n  type: NodePort\n  ports: [{name: http, port: 8080, targetPort: 5000, nodePort: 30000}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ws-1, labels: {kubernetes.io/service-name: ws}}\naddressType: IPv4\nports: [{name: http, port: 5000}]\nendpoints: [{addresses: ["${r.backend()}"]}]\n`,
  );
  const cli = await startCli(['up', '-f', m.file, ...r.args, '--quiet']);
  try {
    const fds = () => readdirSync(`/proc/${cli.child.pid}/fd`).length;
    const before = fds();
    // Clients that keep their end open, as a WebSocket client waiting for frames does: portlab must close its own.
    const clients: net.Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const s = net.connect({ host: r.node, port: 30000, allowHalfOpen: true });
      s.on('error', () => {});
      clients.push(s);
      let answer = '';
      s.on('data', (d) => (answer += d));
      s.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      await waitFor(() => answer.endsWith('no'), 'the pod\'s answer', 10_000);
      t.regex(answer, /^HTTP\/1\.1 200 /);
    }
    await waitFor(() => fds() <= before + 4, `descriptors back near ${before} (now ${fds()})`, 10_000);
    for (const s of clients) s.destroy();
    const metrics = await (await request(`http://${r.admin}/metrics`)).body.text();
    const active = [...metrics.matchAll(/^portlab_downstream_cx_active\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    t.is(active, 0);
  } finally {
    await cli.stop();
    await pod.close();
    await m.cleanup();
  }
});

test('a YAML alias bomb is refused at once with its position, and a reload to one keeps serving', async (t) => {
  const bomb = ['apiVersion: apps/v1', 'kind: Deployment', 'metadata: {name: bomb}', 'spec:', '  template:', '    metadata:', '      annotations:', '        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
    const prev = 'abcdefgh'[i]!;
    bomb.push(`        ${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
  }
  const seed = readFileSync(SEED, 'utf8');
  const m = await tempManifest(`${seed}---\n${bomb.join('\n')}\n`);
  try {
    const r = await runCli(['validate', '-f', m.file]);
    t.is(r.code, 1);
    t.regex(r.stderr, /manifest\.yml:17:1: error converting YAML to JSON: yaml: document contains excessive aliasing/);
    const big = await tempManifest(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\ndata:\n  blob: "${'x'.repeat(4 * 1024 * 1024)}"\n`);
    const tooLarge = await runCli(['validate', '-f', big.file]);
    t.is(tooLarge.code, 1);
    t.regex(tooLarge.stderr, /manifest\.yml:1:1: Request entity too large: limit is 3145728/);
    await big.cleanup();
  } finally {
    await m.cleanup();
  }
  const r = range(188);
  const live = await tempManifest(readFileSync(SEED, 'utf8'));
  const run = await startPortlab(r, [live.file]);
  try {
    writeFileSync(live.file, `${readFileSync(SEED, 'utf8')}---\n${bomb.join('\n')}\n`);
    const reload = await run.portlab.reload();
    t.false(reload.ok);
    t.regex(String(!reload.ok && reload.error.message), /invalid/);
    const res = await request(`http://${r.node}:30000/still`);
    t.is(res.statusCode, 200, 'still serving the previous config');
    await res.body.dump();
  } finally {
    await run.close();
    await live.cleanup();
  }
});

test('a pipe that never ends, or stdin that never closes, gives up after --read-timeout with what to do', async (t) => {
  const dir = await tempManifest('', 'unused');
  const fifo = path.join(dir.dir, 'pipe.yml');
  execFileSync('mkfifo', [fifo]);
  try {
    // Open the FIFO for writing and keep it open, so a read sees no end of input.
    const writer = spawn('sh', ['-c', `exec 3>${fifo}; sleep 30`], { stdio: 'ignore' });
    try {
      const r = await runCli(['validate', '-f', fifo, '--read-timeout', '1s']);
      t.is(r.code, 1);
      t.regex(r.stderr, /pipe\.yml: no end of input after 1s without data/);
      t.regex(r.stderr, /fix: Give a regular file, or make the writer close the pipe/);
    } finally {
      writer.kill();
    }
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'validate', '-f', '-', '--read-timeout', '1s'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.write('kind: Service\n');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin.destroy();
    t.is(code, 1);
    t.regex(stderr, /stdin: no end of input after 1s without data/);
  } finally {
    await dir.cleanup();
  }
});

test('headers reach the pod in the order the client sent them, a thousand of them, Host first', async (t) => {
  const r = range(189);
  const run = await startPortlab(r, [SEED]);
  try {
    // Node keeps 1,000 headers of a request (maxHeadersCount 2000 counts names and values); 990 leave room for X-Forwarded-*.
    const names = Array.from({ length: 990 }, (_, i) => `x-h-${i}`);
    const answer = await raw(r.node, 30000, `GET / HTTP/1.1\r\nHost: first\r\n${names.map((n) => `${n}: v`).join('\r\n')}\r\nConnection: close\r\n\r\n`);
    t.regex(answer, /^HTTP\/1\.1 200 /);
    const keys = Object.keys((JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { headers: object }).headers);
    t.is(keys[0], 'host');
    t.deepEqual(keys.filter((k) => k.startsWith('x-h-')), names);
  } finally {
    await run.close();
  }
});

test('Expect: 100-continue is the pod\'s call, and the pod sees the path the client sent', async (t) => {
  const r = range(190);
  const pod = http.createServer((req, res) => res.end(`got ${req.url}`));
  pod.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/reject') return void res.writeHead(417).end('no body wanted');
    res.writeContinue();
    req.resume();
    req.on('end', () => res.end(`continued ${req.url}`));
  });
  await new Promise<void>((resolve) => pod.listen(5000, r.backend(), resolve));
  const m = await tempManifest(selectorless('expect', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend()]));
  const run = await startPortlab(r, [m.file]);
  try {
    for (const port of [30000]) {
      // The pod refuses: the client gets its 417 first, and no 100 from portlab before it.
      const refused = await raw(r.node, port, 'POST /reject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n');
      t.regex(refused, /^HTTP\/1\.1 417 /);
      // The pod accepts: its 100 Continue comes, the body follows, and the path is the client's own.
      const accepted = await new Promise<string>((resolve) => {
        const s = net.connect({ host: r.node, port });
        let data = '';
        s.on('data', (d) => {
          data += d;
          if (data.startsWith('HTTP/1.1 100') && !data.includes('continued')) s.write('hello');
        });
        s.on('close', () => resolve(data));
        s.write('POST //a/../b\\c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n');
      });
      t.regex(accepted, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      t.regex(accepted, /continued \/\/a\/\.\.\/b\\c$/);
    }
  } finally {
    await run.close();
    await new Promise((resolve) => pod.close(resolve));
    await m.cleanup();
  }
});

test('slow request bodies do not block a port: waiting counts against --upstream-timeout, overflow gets 503 at once', async (t) => {
  const r = range(191);
  // A pod that reads request bodies to the end, however slowly they come, then answers.
  const pod = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('done'));
  });
  await new Promise<void>((resolve) => pod.listen(5000, r.backend(), resolve));
  const m = await tempManifest(selectorless('slow', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend()]));
  const run = await startPortlab(r, [m.file], ['--upstream-connections', '2', '--upstream-timeout', '3s', '--nodeport-hop', 'direct']);
  const drips: net.Socket[] = [];
  // Two clients drip a body a byte every 100 ms, never silent for long: they hold both connections to the pod.
  const dripping = setInterval(() => {
    for (const s of drips) if (!s.destroyed) s.write('x');
  }, 100);
  try {
    for (let i = 0; i < 2; i++) {
      const s = net.connect({ host: r.node, port: 30000 });
      s.on('error', () => {});
      s.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx');
      drips.push(s);
    }
    await waitFor(async () => new Promise<boolean>((resolve) => pod.getConnections((_e, n) => resolve(n === 2))), 'both pod connections taken');
    // Two more requests wait for a connection (the queue holds two): both end in 504 once the timeout has passed.
    const waiting = [0, 1].map(() => request(`http://${r.node}:30000/wait`).then(async (res) => (await res.body.dump(), res.statusCode)));
    await waitFor(async () => /portlab_downstream_cx_active\{[^}]*layer="node"\} 4/.test(await (await request(`http://${r.admin}/metrics`)).body.text()), 'four requests in')
    // A fifth finds pool and queue full: 503 at once.
    const over = await request(`http://${r.node}:30000/over`);
    t.is(over.statusCode, 503);
    t.regex(await over.body.text(), /503 Service Unavailable/);
    t.deepEqual(await Promise.all(waiting), [504, 504]);
    // The drippers finish: the pool is free again.
    clearInterval(dripping);
    for (const s of drips) s.write('y'.repeat(1000));
    await waitFor(async () => (await request(`http://${r.node}:30000/after`).then(async (res) => (await res.body.dump(), res.statusCode))) === 200, 'the port to serve again');
    t.pass();
  } finally {
    clearInterval(dripping);
    for (const s of drips) s.destroy();
    await run.close();
    await new Promise((resolve) => pod.close(resolve));
    await m.cleanup();
  }
});

test('an early answer during an upload reaches the client, at L7 and at L4', async (t) => {
  const r = range(192);
  // A pod that answers after the first chunk of an upload and ends its side, reading and dropping the rest (as
  // Node's own HTTP server does with a body it did not want).
  const pod = await tcpBackend(r.backend(), 5000, (s) => {
    s.once('data', () => s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n'));
    s.resume();
  });
  const m = await tempManifest(
    selectorless(
      'early',
      [
        { name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 },
        { name: 'tcp', port: 8081, targetPort: 5000, nodePort: 30001 },
      ],
      [r.backend()],
    ),
  );
  const run = await startPortlab(r, [m.file]);
  try {
    for (const port of [30000, 30001]) {
      const answer = await new Promise<string>((resolve) => {
        const s = net.connect({ host: r.node, port });
        let data = '';
        s.on('data', (d) => (data += d));
        s.on('error', () => resolve(data));
        s.on('close', () => resolve(data));
        s.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n');
        // Keep uploading until the answer or the end comes.
        const chunk = Buffer.alloc(64 * 1024, 120);
        const pump = () => {
          while (!s.destroyed && s.write(chunk)) if (data) return;
          if (!s.destroyed && !data) s.once('drain', pump);
        };
        pump();
      });
      t.regex(answer, /^HTTP\/1\.1 413 /, `port ${port}`);
    }
  } finally {
    await run.close();
    await pod.close();
    await m.cleanup();
  }
});

test('a client that goes away before its answer is logged as 499, not as the pod\'s 200', async (t) => {
  const r = range(193);
  const run = await startPortlab(r, [SEED]);
  try {
    const s = net.connect({ host: r.node, port: 30000 });
    s.on('error', () => {});
    s.end('GET /gone?delay=300 HTTP/1.1\r\nHost: x\r\n\r\n');
    const line = await waitFor(() => run.records.find((rec) => rec.path === '/gone?delay=300'), 'the log line', 10_000);
    t.is(line!.status, 499);
    t.regex(line!.error ?? '', /client closed the connection before the whole answer/);
    s.destroy();
  } finally {
    await run.close();
  }
});

test('past its descriptor budget portlab resets new connections at once and counts them; nothing runs out', async (t) => {
  const r = range(194);
  // 512 descriptors afford (512 - 256) / 3 = 85 connections in all; a client of the nodePort takes two (node and
  // service hops).
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--quiet', '--verbose'], 20_000, ['prlimit', '--nofile=512:512']);
  const clients: net.Socket[] = [];
  try {
    t.regex(cli.output(), /at most 85 connections in all/);
    const outcomes = await Promise.all(
      Array.from({ length: 150 }, () =>
        new Promise<string>((resolve) => {
          const s = net.connect({ host: r.node, port: 31000 });
          clients.push(s);
          s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
          s.on('end', () => resolve('end'));
          // Held connections stay open: each sends a request and reads its answer, then waits.
          s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
          s.once('data', () => resolve('served'));
        }),
      ),
    );
    const resets = outcomes.filter((o) => o === 'ECONNRESET').length;
    t.true(resets > 0, `some were refused: ${JSON.stringify(outcomes.slice(0, 5))}`);
    t.is(outcomes.filter((o) => o === 'end').length, 0, 'no refusal looks like a clean end');
    t.is(resets + outcomes.filter((o) => o === 'served').length, 150);
    const metrics = await (await request(`http://${r.admin}/metrics`)).body.text();
    const counted = [...metrics.matchAll(/^portlab_downstream_cx_rejected_total\{[^}]*reason="fd_limit"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    t.true(counted >= resets, `counted ${counted} fd_limit refusals for ${resets} resets`);
    t.notRegex(cli.errors(), /EMFILE/);
  } finally {
    for (const s of clients) s.destroy();
    await cli.stop();
  }
});

test('on SIGTERM the nodePort drains through the service hop: a keep-alive request in flight gets its answer', async (t) => {
  const r = range(195);
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--quiet', '--drain-timeout', '5s']);
  try {
    const answer = new Promise<string>((resolve) => {
      const s = net.connect({ host: r.node, port: 30000 });
      let data = '';
      s.on('data', (d) => {
        data += d;
        if (data.includes('"pod"')) resolve(data.split('\r\n')[0]!);
      });
      s.on('error', () => resolve(`error: ${data}`));
      s.on('close', () => resolve(data.split('\r\n')[0] || 'closed'));
      s.write('GET /slow?delay=800 HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    await waitFor(async () => /standin_http_requests_in_flight\{[^}]*\} 1/.test(await (await request(`http://${r.pod(1)}:5000/metrics`)).body.text()), 'the request to reach the pod');
    cli.child.kill('SIGTERM');
    t.is(await answer, 'HTTP/1.1 200 OK');
    t.is(await cli.stop(), 0);
  } finally {
    await cli.stop();
  }
});

test('--watch follows a directory that is deleted and made again, as deploy tools do', async (t) => {
  const r = range(196);
  const m = await tempManifest(readFileSync(SEED, 'utf8'));
  const cli = await startCli(['up', '-f', m.dir, ...r.args, '--quiet', '--watch']);
  try {
    rmSync(m.dir, { recursive: true, force: true });
    await waitFor(() => !existsSync(m.dir), 'the directory to go');
    mkdirSync(m.dir);
    writeFileSync(m.file, readFileSync(SEED, 'utf8').replace('nodePort: 31000', 'nodePort: 31001'));
    await waitFor(() => /reload: /.test(cli.output()), 'a reload after the directory came back', 15_000);
    t.regex(cli.output(), /node [\d.]+:31001/);
  } finally {
    await cli.stop();
    await m.cleanup();
  }
});

// L7 through http-proxy: intact bodies, original client, per-request balancing, every failure answered, hardening.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { hasLoopback6, parseOptions } from '../src/cli/options.js';
import { selectorless, tcpBackend } from './helpers/backends.js';
import { runCli } from './helpers/cli.js';
import { MY_APP, SEED, exchange, range, sha256, startPortlab, statusLine, tempManifest, waitFor, type Range, type Running } from './helpers/portlab.js';

const MiB = 1024 * 1024;

async function withSeed(n: number, fn: (r: Range, run: Running) => Promise<void>, extra: string[] = []): Promise<void> {
  const r = range(n);
  const run = await startPortlab(r, [SEED, MY_APP], extra);
  try {
    await fn(r, run);
  } finally {
    await run.close();
  }
}

/** podCounter reads one counter from the stand-in pods' own /metrics, summed over pods. */
async function podCounter(run: Running, name: string): Promise<number> {
  let sum = 0;
  for (const pod of run.portlab.proxier.listPods()) {
    const m = new RegExp(`^${name}\\{[^}]*port="5000"[^}]*\\} (\\d+)$`, 'm').exec(pod.metricsText());
    sum += Number(m?.[1] ?? 0);
  }
  return sum;
}

/**
 * withOwnPod serves `handler` as the only endpoint (r.backend(1):5000) of a selector-less Service with port 8080 and
 * nodePort 30000, runs fn against portlab, and closes portlab, the pod and the manifest after.
 */
async function withOwnPod(n: number, name: string, handler: http.RequestListener, fn: (r: Range, run: Running) => Promise<void>, extra: string[] = []): Promise<void> {
  const r = range(n);
  const pod = http.createServer(handler);
  await new Promise<void>((resolve) => pod.listen(5000, r.backend(1), resolve));
  const m = await tempManifest(selectorless(name, [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]));
  const run = await startPortlab(r, [m.file], extra);
  try {
    await fn(r, run);
  } finally {
    await run.close();
    pod.closeAllConnections();
    await new Promise<void>((resolve) => pod.close(() => resolve()));
    await m.cleanup();
  }
}

test('GET and POST with 10 MiB bodies round-trip intact at the node and service layer', async (t) => {
  await withSeed(130, async (r) => {
    const agent = new Agent({ localAddress: r.client });
    const body = randomBytes(10 * MiB);
    try {
      for (const base of [`http://${r.node}:30000`, `http://${r.service(1)}:8080`]) {
        const post = await request(`${base}/upload`, { method: 'POST', body, dispatcher: agent });
        const answer = (await post.body.json()) as { bodyBytes: number; bodySha256: string; headers: Record<string, string> };
        t.is(post.statusCode, 200);
        t.is(answer.bodyBytes, body.length);
        t.is(answer.bodySha256, sha256(body));
        t.is(answer.headers['x-forwarded-for'], r.client, 'the pod sees the original client');
        const get = await request(`${base}/download?size=${10 * MiB}`, { dispatcher: agent });
        const got = Buffer.from(await get.body.arrayBuffer());
        t.is(got.length, 10 * MiB);
        t.is(sha256(got), sha256(Buffer.alloc(10 * MiB, 'x')));
      }
    } finally {
      await agent.close();
    }
  });
});

test('balancing is per request: one keep-alive connection reaches both replicas; upstream sockets are reused', async (t) => {
  const check = async (r: Range, run: Running) => {
    const agent = new Agent({ connections: 1, localAddress: r.client });
    try {
      for (const base of [`http://${r.node}:30000`, `http://${r.service(1)}:8080`]) {
        const pods = new Set<string>();
        for (let i = 0; i < 30; i++) {
          const res = await request(`${base}/`, { dispatcher: agent });
          pods.add(((await res.body.json()) as { pod: string }).pod);
        }
        t.is(pods.size, 2, base);
      }
      // 60 requests, but a keep-alive upstream agent: each pod saw a handful of connections, not one per request.
      const podConnections = await podCounter(run, 'standin_connections_total');
      t.true(podConnections <= 6, `pods saw ${podConnections} connections for 60 requests`);
    } finally {
      await agent.close();
    }
  };
  await withSeed(131, check, ['--seed', '3']);
});

test('no endpoint: 503 with a body naming the Service', async (t) => {
  const r = range(132);
  const m = await tempManifest(`apiVersion: v1
kind: Service
metadata: {name: nobody-home}
spec:
  type: NodePort
  ports: [{name: http, port: 8080, nodePort: 30000}]
`);
  const run = await startPortlab(r, [m.file]);
  try {
    for (const url of [`http://${r.node}:30000/`, `http://${r.service(1)}:8080/`]) {
      const res = await request(url);
      t.is(res.statusCode, 503);
      t.regex(await res.body.text(), /no ready endpoints for Service default\/nobody-home:http/);
    }
  } finally {
    await run.close();
    await m.cleanup();
  }
});

test('upstream refused: 502; upstream reset: 502; the process survives both', async (t) => {
  const r = range(133);
  const resetter = await tcpBackend(r.backend(2), 5000, (s) => s.once('data', () => s.resetAndDestroy()));
  const m = await tempManifest(
    selectorless('refused', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]) +
      '---\n' +
      selectorless('reset', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30001 }], [r.backend(2)]),
  );
  const run = await startPortlab(r, [m.file]);
  try {
    const refusedSvc = run.portlab.proxier.state!.services.find((s) => s.name === 'refused')!;
    const resetSvc = run.portlab.proxier.state!.services.find((s) => s.name === 'reset')!;
    for (const url of [`http://${r.node}:30000/`, `http://${refusedSvc.clusterIP}:8080/`]) {
      const res = await request(url);
      t.is(res.statusCode, 502, url);
      t.regex(await res.body.text(), /ECONNREFUSED/);
    }
    for (const url of [`http://${r.node}:30001/`, `http://${resetSvc.clusterIP}:8080/`]) {
      const res = await request(url);
      t.is(res.statusCode, 502, url);
      await res.body.dump();
    }
  } finally {
    await run.close();
    await resetter.close();
    await m.cleanup();
  }
});

test('upstream timeout: 504 after --upstream-timeout', async (t) => {
  await withSeed(134, async (r) => {
    for (const url of [`http://${r.node}:30000/?delay=5000`, `http://${r.service(1)}:8080/?delay=5000`]) {
      const res = await request(url);
      t.is(res.statusCode, 504, url);
      t.regex(await res.body.text(), /did not answer in time/);
    }
    // http-proxy emits no 'proxyReq' for a request with Expect: the timeout must still hold (undici sends no Expect).
    for (const [host, port] of [[r.node, 30000], [r.service(1), 8080]] as const) {
      const head = `POST /?delay=2000 HTTP/1.1\r\nHost: slow\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n`;
      const raw = await rawExchange(host, port, `${head}hello`);
      t.regex(raw, /HTTP\/1\.1 504 Gateway Timeout\r\n[^]*did not answer in time/, `Expect at ${host}:${port}`);
    }
  }, ['--upstream-timeout', '300ms']);
});

test('--upstream-timeout is the time to the answer: a streamed body may pause longer; an answer that never starts gets 504', async (t) => {
  // The timeout is long enough that a busy machine still gets the pod's headers through in time; the pause and the
  // late answer are longer still.
  const pod: http.RequestListener = (req, res) => {
    if (req.url === '/warm') return void res.end('ok');
    if (req.url === '/late') return void setTimeout(() => res.end('too late'), 10_000).unref();
    // /pause: headers at once, one byte, then 3.5 s of silence (longer than the 3 s timeout), then the rest: an SSE
    // stream or a long-poll body does this all the time.
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('a');
    setTimeout(() => res.end('b'), 3500).unref();
  };
  await withOwnPod(126, 'slow', pod, async (r) => {
    const agent = new Agent({ localAddress: r.client });
    try {
      // Both layers at once; each first warms its path, so its pooled connections are open.
      await Promise.all(
        [`http://${r.node}:30000`, `http://${r.service(1)}:8080`].map(async (base) => {
          await (await request(`${base}/warm`, { dispatcher: agent })).body.dump();
          const [pause, late] = await Promise.all([request(`${base}/pause`, { dispatcher: agent }), request(`${base}/late`, { dispatcher: agent })]);
          t.is(pause.statusCode, 200, base);
          t.is(await pause.body.text(), 'ab', `${base}: a paused body arrives whole`);
          t.is(late.statusCode, 504, base);
          await late.body.dump();
        }),
      );
    } finally {
      await agent.close();
    }
  }, ['--upstream-timeout', '3s']);
});

test('client abort: the pod sees its request cancelled', async (t) => {
  await withSeed(135, async (r, run) => {
    const before = await podCounter(run, 'standin_http_requests_aborted_total');
    const controller = new AbortController();
    const pending = request(`http://${r.node}:30000/?delay=10000`, { signal: controller.signal }).catch((err: Error) => err);
    // Wait until the request has reached a pod, then go away.
    await waitFor(async () => (await podCounter(run, 'standin_connections_total')) > 0, 'the request to reach a pod');
    controller.abort();
    t.true((await pending) instanceof Error);
    await waitFor(async () => (await podCounter(run, 'standin_http_requests_aborted_total')) > before, 'the pod to see the request cancelled', 3000);
    t.pass();
  });
});

test('upstream dies mid-body: the client connection is destroyed, not left hanging', async (t) => {
  const r = range(136);
  const dying = await tcpBackend(r.backend(1), 5000, (s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: text/plain\r\n\r\n');
      s.write('x'.repeat(1000));
      setTimeout(() => s.destroy(), 20);
    });
  });
  const m = await tempManifest(selectorless('dying', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]));
  const run = await startPortlab(r, [m.file]);
  try {
    for (const url of [`http://${r.node}:30000/`, `http://${r.service(1)}:8080/`]) {
      const outcome = await new Promise<string>((resolve) => {
        const req = http.get(url, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(`clean end after ${n} bytes`));
          res.on('error', () => resolve('destroyed'));
          res.on('aborted', () => resolve('destroyed'));
        });
        req.on('error', () => resolve('destroyed'));
        setTimeout(() => resolve('hung'), 5000).unref();
      });
      t.is(outcome, 'destroyed', url);
    }
  } finally {
    await run.close();
    await dying.close();
    await m.cleanup();
  }
});

/** rawExchange sends one raw request and returns what the server sent until it ended, as latin1 text. */
async function rawExchange(host: string, port: number, request: string): Promise<string> {
  return (await exchange(host, port, request, { halfClose: false, timeoutMs: 5000 })).toString('latin1');
}

function splitHead(raw: string): [string, string] {
  const end = raw.indexOf('\r\n\r\n');
  return [raw.slice(0, end), raw.slice(end + 4)];
}

test('response relay: end-to-end headers and their order kept, hop-by-hop headers dropped, HTTP/1.0 and HEAD framed right', async (t) => {
  const pod: http.RequestListener = (req, res) => {
    if (req.url === '/empty') {
      res.writeHead(204, { 'X-Custom': 'kept' }).end();
      return;
    }
    // A hop-by-hop header named in Connection, plus Keep-Alive and chunked framing: none of them may cross the proxy.
    res.setHeader('Connection', 'keep-alive, X-Hop');
    res.setHeader('X-Hop', 'drop-me');
    res.setHeader('X-Saw', `connection=${req.headers.connection} client-hop=${req.headers['x-client-hop'] ?? 'none'}`);
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('X-Custom', 'kept');
    res.write('hello ');
    res.end('world');
  };
  await withOwnPod(139, 'relay', pod, async (r) => {
    for (const [host, port] of [[r.node, 30000], [r.service(1), 8080]] as const) {
      const at = `${host}:${port}`;
      const v11 = await rawExchange(host, port, `GET / HTTP/1.1\r\nHost: relay\r\nConnection: close, X-Client-Hop\r\nX-Client-Hop: 1\r\n\r\n`);
      const [head11, body11] = splitHead(v11);
      t.regex(head11, /^HTTP\/1\.1 200 OK\r\n/, at);
      t.regex(head11, /\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Custom: kept\r\n/, `${at}: end-to-end headers in the pod's order`);
      t.regex(head11, /\r\nX-Saw: connection=keep-alive client-hop=none\r\n/, `${at}: the client's hop-by-hop headers stop at portlab; the pod connection stays pooled`);
      t.notRegex(head11, /\r\n(X-Hop|Keep-Alive):/i, `${at}: hop-by-hop headers dropped`);
      t.regex(head11, /\r\nConnection: close/i, `${at}: portlab answers the client's own Connection`);
      t.regex(head11, /\r\nTransfer-Encoding: chunked/i, `${at}: HTTP/1.1 without a length is chunked`);
      t.is(body11, '6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n', `${at}: body intact`);

      const v10 = await rawExchange(host, port, `GET / HTTP/1.0\r\nHost: relay\r\n\r\n`);
      const [head10, body10] = splitHead(v10);
      t.notRegex(head10, /Transfer-Encoding/i, `${at}: no chunked framing for an HTTP/1.0 client`);
      t.is(body10, 'hello world', `${at}: HTTP/1.0 body ends with the connection: ${JSON.stringify(v10)}`);

      const head = await rawExchange(host, port, `HEAD / HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n`);
      t.true(head.endsWith('\r\n\r\n'), `${at}: HEAD has no body: ${JSON.stringify(head.slice(-40))}`);
      const empty = await rawExchange(host, port, `GET /empty HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n`);
      t.regex(empty, /^HTTP\/1\.1 204 No Content\r\n[^]*X-Custom: kept\r\n[^]*\r\n\r\n$/, `${at}: 204 relayed with no body`);
    }
  });
});

test('request bodies: none, empty, sized and chunked reach the pod as sent, several on one keep-alive connection', async (t) => {
  // The pod answers with what it saw: framing headers and the body.
  const pod: http.RequestListener = async (req, res) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const saw = `${req.method} length=${req.headers['content-length'] ?? '-'} te=${req.headers['transfer-encoding'] ?? '-'} body=${body}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(saw) }).end(saw);
  };
  const requests = [
    ['GET /a HTTP/1.1\r\nHost: b\r\n\r\n', 'GET length=- te=- body='],
    ['POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n', 'POST length=0 te=- body='],
    ['POST /c HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhello', 'POST length=5 te=- body=hello'],
    ['PUT /d HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n', 'PUT length=- te=chunked body=abcde'],
    ['GET /e HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n', 'GET length=- te=- body='],
  ];
  await withOwnPod(129, 'bodies', pod, async (r) => {
    for (const [host, port] of [[r.node, 30000], [r.service(1), 8080]] as const) {
      // All five in one write, pipelined on one connection: a bodiless request must not stall the ones behind it.
      const raw = await rawExchange(host, port, requests.map(([req]) => req).join(''));
      const bodies = raw.split(/HTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\n/).slice(1);
      t.deepEqual(bodies, requests.map(([, saw]) => saw), `${host}:${port}: ${JSON.stringify(raw.slice(0, 200))}`);
    }
  });
});

test('the pod sees the request-target the client sent: no slash collapsed, no backslash turned, nothing re-escaped', async (t) => {
  const pod: http.RequestListener = (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': Buffer.byteLength(req.url ?? '') }).end(req.url));
  };
  const targets = ['/a//b?x=1&y=%2F', '/a\\b', '//lead', '/%7Bx%7D/{y}', '/q?next=http://other//x'];
  await withOwnPod(118, 'paths', pod, async (r) => {
    for (const [host, port] of [[r.node, 30000], [r.service(1), 8080]] as const) {
      for (const target of targets) {
        for (const [method, body] of [['GET', ''], ['POST', 'hello']] as const) {
          const head = `${method} ${target} HTTP/1.1\r\nHost: paths\r\nConnection: close\r\n${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n`;
          const raw = await rawExchange(host, port, head + body);
          t.is(splitHead(raw)[1], target, `${method} ${target} at ${host}:${port}`);
        }
      }
      // With Expect, Node writes the pod's request line before any body source runs: http-proxy's own path is used,
      // and it must still be the client's for an ordinary path, with and without a body.
      for (const [method, body] of [['POST', 'hello'], ['GET', '']] as const) {
        const target = '/up/load?x=1';
        const head = `${method} ${target} HTTP/1.1\r\nHost: paths\r\nConnection: close\r\nExpect: 100-continue\r\n${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n`;
        const raw = await rawExchange(host, port, head + body);
        t.regex(raw, /HTTP\/1\.1 200 OK\r\n/, `${method} with Expect at ${host}:${port} is answered`);
        t.true(raw.endsWith(`\r\n\r\n${target}`), `${method} with Expect at ${host}:${port} reaches the pod as ${target}: ${JSON.stringify(raw.slice(-40))}`);
      }
    }
  });
});

test('WebSocket echo through node → service → pod, and an upgrade to a dead backend leaves the process up', async (t) => {
  const r = range(137);
  const wss = new WebSocketServer({ host: r.backend(1), port: 5000 });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws, req) => ws.on('message', (data) => ws.send(`echo ${data} from ${req.headers['x-forwarded-for']} at ${req.url}`)));
  const m = await tempManifest(
    selectorless('ws', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]) +
      '---\n' +
      selectorless('ws-dead', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30001 }], [r.backend(2)]),
  );
  const run = await startPortlab(r, [m.file]);
  try {
    const echo = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`ws://${r.node}:30000/chat/room?id=7`, { localAddress: r.client });
      ws.on('open', () => ws.send('hello'));
      ws.on('message', (d) => {
        resolve(String(d));
        ws.close();
      });
      ws.on('error', reject);
    });
    t.is(echo, `echo hello from ${r.client} at /chat/room?id=7`);
    const dead = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://${r.node}:30001/`);
      ws.on('open', () => resolve('open'));
      ws.on('error', (err) => resolve(`error: ${err.message}`));
      ws.on('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`));
    });
    t.is(dead, 'status 502');
    t.log(`upgrade to a dead backend: ${dead}`);
    // The process is still up and serving.
    const res = await request(`http://${r.node}:30000/`);
    t.true(res.statusCode > 0);
    await res.body.dump();
  } finally {
    await run.close();
    await new Promise((resolve) => wss.close(resolve));
    await m.cleanup();
  }
});

test('malformed and smuggling requests are answered at the first hop and never reach a pod', async (t) => {
  await withSeed(138, async (r, run) => {
    const before = await podCounter(run, 'standin_http_requests_total');
    const cases: [string, string | Buffer, string][] = [
      ['CL+TE', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', '400'],
      ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde', '400'],
      ['garbage request line', 'GARBAGE\x00\x01 / HTTP/9\r\n\r\n', '400'],
      ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', '400'],
      ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n', '400'],
      ['headers over 16 KiB', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, '431'],
      ['random bytes', randomBytes(512), '400'],
    ];
    for (const [what, payload, status] of cases) {
      for (const [layer, host, port] of [['node', r.node, 30000], ['service', r.service(1), 8080]] as const) {
        const line = await statusLine(host, port, payload);
        t.true(line.startsWith(`HTTP/1.1 ${status}`), `${what} at ${layer}: ${line}`);
      }
    }
    // slowloris: headers never finish; --headers-timeout 1s answers 408.
    const slow = await statusLine(r.node, 30000, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ', { keepOpen: true });
    t.true(slow.startsWith('HTTP/1.1 408'), `slowloris: ${slow}`);
    t.is(await podCounter(run, 'standin_http_requests_total'), before, 'no malformed request reached a pod');
  }, ['--headers-timeout', '1s']);
});

/** run_ runs a real tool without blocking portlab, which runs in this process; undefined when it is not installed. */
function run_(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string } | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => resolve((err as NodeJS.ErrnoException | null)?.code === 'ENOENT' ? undefined : { stdout, stderr }));
  });
}

/** readResponses reads HTTP/1.1 responses from a raw socket until `count` whole ones (by Content-Length) arrived. */
function readResponses(s: import('node:net').Socket, count: number): Promise<{ status: number; body: string }[]> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done: { status: number; body: string }[] = [];
    s.on('data', (d) => {
      buf += d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        done.push({ status: Number(buf.slice(9, 12)), body: buf.slice(end + 4, end + 4 + length) });
        buf = buf.slice(end + 4 + length);
        if (done.length === count) return resolve(done);
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed after ${done.length} of ${count} responses: ${buf.slice(0, 300)}`)));
  });
}

test('Upgrade: h2c (Java HttpClient, curl --http2) is declined: served as HTTP/1.1 with its body, the connection kept, and logged', async (t) => {
  const seen: { url?: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const pod: http.RequestListener = (req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ url: req.url, headers: req.headers, body });
      res.end(`${req.method} ${req.url} ${body.length}`);
    });
  };
  await withOwnPod(197, 'h2c', pod, async (r, run) => {
    // What Java's HttpClient sends on an http:// URL, then a POST whose body comes in the same packet as its headers,
    // then a plain request on the same connection: all three are answered, in order.
    const s = (await import('node:net')).connect({ host: r.node, port: 30000 });
    const answers = readResponses(s, 3);
    // Pipelined in one write: the second upgrade arrives while the first answer is still on its way.
    s.write(
      'GET /java HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nContent-Length: 0\r\nHost: x\r\nHTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\nUpgrade: h2c\r\nUser-Agent: Java-http-client/17\r\n\r\n' +
        'POST /upload HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 11\r\n\r\nhello world' +
        'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const all = await answers;
    s.destroy();
    t.deepEqual(all.map((a) => [a.status, a.body]), [[200, 'GET /java 0'], [200, 'POST /upload 11'], [200, 'GET /plain 0']]);
    t.is(seen[1]!.body, 'hello world');
    for (const req of seen) {
      t.is(req.headers.upgrade, undefined, req.url);
      t.is(req.headers['http2-settings'], undefined, req.url);
      t.notRegex(String(req.headers.connection), /upgrade/i, req.url);
    }
    t.is(seen[0]!.headers['user-agent'], 'Java-http-client/17');
    await waitFor(() => run.records.length >= 3, 'three log records');
    const notes = run.records.map((x) => [x.path, x.status, x.note]);
    t.deepEqual(notes.slice(0, 3), [
      ['/java', 200, 'Upgrade: h2c declined, served as HTTP/1.1'],
      ['/upload', 200, 'Upgrade: h2c declined, served as HTTP/1.1'],
      ['/plain', 200, undefined],
    ]);

    // The real tool, where it is installed.
    const curl = await run_('curl', ['-s', '--http2', '-o', '-', '-w', ' %{http_code} %{http_version}', `http://${r.node}:30000/curl`]);
    if (curl === undefined) t.log('curl is not installed: its case is left to the raw request above');
    else t.is(curl.stdout, 'GET /curl 0 200 1.1');
    // And Java's HttpClient itself, which asks for h2c on every request to an http:// URL.
    const java = await tempManifest(JAVA_GET, 'Get.java');
    try {
      const got = await run_('java', [java.file, `http://${r.node}:30000/java1`, `http://${r.node}:30000/java2`]);
      if (got === undefined) t.log('java is not installed: its case is left to the raw request above');
      else t.is(got.stdout, '200 HTTP_1_1 GET /java1 0\n200 HTTP_1_1 GET /java2 0\n', got.stderr);
    } finally {
      await java.cleanup();
    }
  });
});

/** JAVA_GET is a Java program (run from source, JDK 11+) that GETs each URL with the default HttpClient. */
const JAVA_GET = `import java.net.URI;
import java.net.http.*;
public class Get {
  public static void main(String[] urls) throws Exception {
    HttpClient client = HttpClient.newHttpClient();
    for (String u : urls) {
      HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(u)).build(), HttpResponse.BodyHandlers.ofString());
      System.out.println(r.statusCode() + " " + r.version() + " " + r.body());
    }
  }
}
`;

test('HTTP/2 with prior knowledge on an L7 port gets a GOAWAY that says how to serve it; a port named grpc carries HTTP/2 at L4', async (t) => {
  const r = range(198);
  const http2 = await import('node:http2');
  // The pod speaks HTTP/2 only (as a gRPC server does), on one port behind an L7 `http` port and an L4 `grpc` port.
  const pod = http2.createServer((req, res) => res.end(`h2 ${req.url}`));
  await new Promise<void>((resolve) => pod.listen(5000, r.backend(1), resolve));
  const m = await tempManifest(
    selectorless('h2', [{ name: 'http', port: 8080, targetPort: 5000, nodePort: 30000 }, { name: 'grpc', port: 8081, targetPort: 5000, nodePort: 30001 }], [r.backend(1)]),
  );
  const run = await startPortlab(r, [m.file]);
  const ask = (port: number) =>
    new Promise<{ body?: string; goaway?: { code: number; debug: string } }>((resolve) => {
      const session = http2.connect(`http://${r.node}:${port}`);
      let goaway: { code: number; debug: string } | undefined;
      session.on('goaway', (code, _last, data) => (goaway = { code, debug: data?.toString() ?? '' }));
      session.on('error', () => {});
      const req = session.request({ ':path': '/x' });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        session.close();
        resolve({ body });
      });
      req.on('error', () => {
        session.destroy();
        resolve({ goaway });
      });
      session.on('close', () => resolve({ goaway }));
    });
  try {
    const refused = await ask(30000);
    t.is(refused.goaway?.code, http2.constants.NGHTTP2_HTTP_1_1_REQUIRED);
    t.regex(refused.goaway?.debug ?? '', /name the port grpc or h2c, or set appProtocol: kubernetes\.io\/h2c/);
    await waitFor(() => run.records.some((x) => x.method === 'PRI'), 'the refused preface logged');
    const logged = run.records.find((x) => x.method === 'PRI')!;
    t.true((logged.bytesIn ?? 0) >= 24, `the preface's bytes are counted: ${logged.bytesIn}`);
    t.true((logged.bytesOut ?? 0) > 0);
    t.is(logged.hops[0]?.listen, `${r.node}:30000`);
    t.regex(logged.error ?? '', /HTTP\/2 preface on an HTTP\/1\.1 port/);
    t.is((await ask(30001)).body, 'h2 /x');
    t.true(run.portlab.proxier.state!.notes.some((n) => /port "grpc" says HTTP\/2 \(gRPC, h2c\): it is served at L4/.test(n)));
    // curl with prior knowledge, where it is installed: it is told, and fails rather than hanging.
    const curl = await run_('curl', ['-sv', '--http2-prior-knowledge', `http://${r.node}:30000/`]);
    if (curl === undefined) t.log('curl is not installed');
    else t.regex(curl.stderr, /GOAWAY, error=13/);
  } finally {
    await run.close();
    await new Promise<void>((resolve) => pod.close(() => resolve()));
    await m.cleanup();
  }
});

test('IPv6: with --node-address-v6 ::1 every nodePort answers on [::1] too (L7, L4, UDP), and logs and hints bracket it', async (t) => {
  if (!hasLoopback6()) {
    if (process.env.CI) t.fail('CI must have ::1 on its loopback');
    else t.log('this host has no ::1: nothing to test');
    return;
  }
  const r = range(199);
  const m = await tempManifest(`apiVersion: v1
kind: Service
metadata: {name: six}
spec:
  type: NodePort
  selector: {app: six}
  ports:
    - {name: http, port: 80, targetPort: 8080, nodePort: 32199}
    - {name: tcp, port: 81, targetPort: 8081, nodePort: 32198}
    - {name: echo, port: 53, targetPort: 5353, protocol: UDP, nodePort: 32197}
`);
  const run = await startPortlab(r, [m.file], ['--node-address-v6', '::1']);
  try {
    for (const port of [32199, 32198]) {
      const res = await request(`http://[::1]:${port}/v6`);
      t.is(res.statusCode, 200, String(port));
      const body = (await res.body.json()) as { path: string; headers: Record<string, string> };
      t.is(body.path, '/v6');
      if (port === 32199) t.is(body.headers['x-forwarded-for'], '::1');
    }
    const dgram = await import('node:dgram');
    const sock = dgram.createSocket('udp6');
    const echoed = new Promise<string>((resolve) => sock.once('message', (msg) => resolve(String(msg))));
    sock.send('ping6', 32197, '::1');
    t.regex(await echoed, /ping6/);
    sock.close();
    await waitFor(() => run.records.some((x) => x.hops[0]?.listen === '[::1]:32199'), 'the IPv6 request logged');
    const l7 = run.records.find((x) => x.hops[0]?.listen === '[::1]:32199')!;
    t.regex(l7.client, /^\[::1\]:\d+$/);
    t.is(l7.hops[1]?.layer, 'service');
    const table = await runCli(['routes', '-f', m.file, ...r.args, '--node-address-v6', '::1']);
    t.regex(table.stdout, /six\/http {2}L7 {2}node \{127\.199\.0\.1:32199, \[::1\]:32199\}/);
    // Off unless asked for beside a node address other than 127.0.0.1; never in a kernel mode.
    t.is(parseOptions(['up', '-f', m.file, ...r.args]).nodeAddress6, undefined);
    t.is(parseOptions(['up', '-f', m.file]).nodeAddress6, '::1');
    t.is(parseOptions(['up', '-f', m.file, '--node-address-v6', 'off']).nodeAddress6, undefined);
    t.is(parseOptions(['up', '-f', m.file, '--proxy-mode', 'nftables']).nodeAddress6, undefined);
    t.throws(() => parseOptions(['up', '-f', m.file, '--node-address-v6', '127.0.0.1']), { message: /--node-address-v6 "127.0.0.1": expected an IPv6 address/ });
    t.throws(() => parseOptions(['up', '-f', m.file, '--node-address-v6', '::1', '--proxy-mode', 'iptables']), { message: /--node-address-v6 is for --proxy-mode userspace/ });
  } finally {
    await run.close();
    await m.cleanup();
  }
});

test('response headers reach the client when the pod sends them, before any body byte (an EventSource opens at once)', async (t) => {
  // Each request's body waits for the test to release it.
  const releases: (() => void)[] = [];
  const pod: http.RequestListener = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    releases.push(() => res.end('data: first\n\n'));
  };
  await withOwnPod(104, 'sse', pod, async (r) => {
    for (const base of [`http://${r.node}:30000`, `http://${r.service(1)}:8080`]) {
      // The pod sends no body byte until the headers have reached the client: if portlab held them back, this waits.
      const res = await Promise.race([
        request(`${base}/events`),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${base}: no headers while the body has not begun`)), 15_000).unref()),
      ]);
      t.is(res.statusCode, 200, base);
      t.is(res.headers['content-type'], 'text/event-stream');
      releases.shift()!();
      t.is(await res.body.text(), 'data: first\n\n');
    }
  });
});

// L4 correctness at every layer: bytes, half-close, resets, fail-fast and backpressure.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import test from 'ava';
import { selectorless, tcpBackend } from './helpers/backends.js';
import { connectionOutcome, exchange, range, sha256, startPortlab, tempManifest, type Range } from './helpers/portlab.js';

const MiB = 1024 * 1024;

async function withForwarding(n: number, backend: (s: net.Socket) => void, run: (r: Range, layers: [string, string, number][]) => Promise<void>, extra: string[] = []) {
  const r = range(n);
  const b = await tcpBackend(r.backend(1), 5000, backend);
  const m = await tempManifest(selectorless('raw', [{ name: 'tcp', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]));
  const p = await startPortlab(r, [m.file], extra);
  try {
    await run(r, [
      ['node', r.node, 30000],
      ['service', r.service(1), 8080],
    ]);
  } finally {
    await p.close();
    await b.close();
    await m.cleanup();
  }
}

test('50 MiB each way arrive byte for byte (sha256) through node and service hops', async (t) => {
  const upload = randomBytes(50 * MiB);
  const download = randomBytes(50 * MiB);
  const seen: string[] = [];
  await withForwarding(110, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => {
      seen.push(sha256(Buffer.concat(chunks)));
      s.end(download);
    });
  }, async (_r, layers) => {
    for (const [layer, host, port] of layers) {
      const got = await exchange(host, port, upload);
      t.is(got.length, download.length, layer);
      t.is(sha256(got), sha256(download), `${layer}: download intact`);
      t.is(seen.at(-1), sha256(upload), `${layer}: upload intact`);
    }
  });
});

test('half-close: the client FINs after sending and still gets the whole answer', async (t) => {
  await withForwarding(111, (s) => {
    let n = 0;
    s.on('data', (c) => (n += c.length));
    // The backend answers only after the client's FIN, so the answer must cross a half-closed connection.
    s.on('end', () => s.end(`got ${n} bytes`));
  }, async (_r, layers) => {
    for (const [layer, host, port] of layers) {
      const got = await exchange(host, port, Buffer.from('hello, half-closed world'));
      t.is(got.toString(), 'got 24 bytes', layer);
    }
  });
});

test('half-close the other way: the backend FINs first and the client can still send', async (t) => {
  await withForwarding(112, (s) => {
    s.write('server done\n');
    s.end(); // FIN from the backend first
    let n = 0;
    s.on('data', (c) => (n += c.length));
    s.on('end', () => (s as net.Socket & { got?: number }).got = n);
  }, async (_r, layers) => {
    for (const [layer, host, port] of layers) {
      const result = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ host, port, allowHalfOpen: true });
        let text = '';
        c.on('data', (d) => (text += d));
        c.on('end', () => {
          // The backend's write side is closed; ours is open, so this still reaches it.
          c.end('after your FIN', () => resolve(text));
        });
        c.on('error', reject);
      });
      t.is(result, 'server done\n', layer);
    }
  });
});

test('a backend reset reaches the client as ECONNRESET, not as a clean end', async (t) => {
  await withForwarding(113, (s) => {
    s.write('partial');
    setTimeout(() => s.resetAndDestroy(), 50);
  }, async (_r, layers) => {
    for (const [layer, host, port] of layers) {
      const outcome = await new Promise<{ code?: string; data: string }>((resolve) => {
        const c = net.connect({ host, port });
        let data = '';
        c.on('data', (d) => (data += d));
        c.on('error', (err: NodeJS.ErrnoException) => resolve({ code: err.code, data }));
        c.on('end', () => resolve({ code: 'clean end', data }));
      });
      t.is(outcome.code, 'ECONNRESET', layer);
      t.is(outcome.data, 'partial', `${layer}: bytes before the reset arrive`);
    }
  });
});

test('a client reset reaches the backend as ECONNRESET', async (t) => {
  const codes: string[] = [];
  await withForwarding(114, (s) => {
    s.on('error', (err: NodeJS.ErrnoException) => codes.push(err.code ?? 'error'));
    s.on('end', () => codes.push('clean end'));
    s.write('hi');
  }, async (_r, layers) => {
    for (const [, host, port] of layers) {
      await new Promise<void>((resolve) => {
        const c = net.connect({ host, port });
        c.on('error', () => {});
        c.once('data', () => {
          c.resetAndDestroy();
          resolve();
        });
      });
    }
    const deadline = Date.now() + 3000;
    while (codes.length < layers.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  });
  t.deepEqual(codes, ['ECONNRESET', 'ECONNRESET']);
});

test('no endpoints: the client is reset at every layer, never left hanging', async (t) => {
  const r = range(115);
  // A selector-less Service with no EndpointSlice has no endpoints.
  const m = await tempManifest(`apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  type: NodePort
  ports: [{name: tcp, port: 8080, nodePort: 30000}]
`);
  const p = await startPortlab(r, [m.file]);
  try {
    for (const [layer, host, port] of [['node', r.node, 30000], ['service', r.service(1), 8080]] as const) {
      // 'open' means it hung for 10 s; 'end' would be an empty success. The reset is sent from the accept itself.
      const outcome = await connectionOutcome(host, port, 10_000);
      t.true(['reset', 'refused'].includes(outcome), `${layer}: ${outcome}`);
    }
    const rejected = await p.portlab.metrics.rejected.get();
    t.true(rejected.values.some((v) => v.value >= 1 && v.labels.reason === 'no_endpoints'));
  } finally {
    await p.close();
    await m.cleanup();
  }
});

test('a backend that is down: the client is reset at once, and the failure is counted', async (t) => {
  const r = range(116);
  const m = await tempManifest(selectorless('down', [{ name: 'tcp', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(9)]));
  const p = await startPortlab(r, [m.file]);
  try {
    for (const [host, port] of [[r.node, 30000], [r.service(1), 8080]] as const) {
      const code = await new Promise<string>((resolve) => {
        const c = net.connect({ host, port });
        c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        c.on('end', () => resolve('clean end'));
      });
      t.is(code, 'ECONNRESET');
    }
    const fails = await p.portlab.metrics.upstreamConnectFail.get();
    t.true(fails.values.some((v) => v.labels.code === 'ECONNREFUSED' && v.value >= 1));
  } finally {
    await p.close();
    await m.cleanup();
  }
});

test('--idle-timeout closes an idle L4 connection, at both layers', async (t) => {
  await withForwarding(117, () => {}, async (_r, layers) => {
    for (const [layer, host, port] of layers) {
      // 'open' means still open after 10 s; an end or a reset is the 300 ms idle timeout closing it.
      const outcome = await connectionOutcome(host, port, 10_000);
      t.not(outcome, 'open', layer);
    }
  }, ['--idle-timeout', '300ms']);
});

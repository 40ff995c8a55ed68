// Watching it: one log line per request with every hop, Prometheus metrics that match the traffic, health, routes -o.
import test from 'ava';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { runCli } from './helpers/cli.js';
import { SEED, range, startPortlab, waitFor } from './helpers/portlab.js';
import { newFlow, newHop, type Flow } from '../src/forward/flow.js';
import { FLUSH_MS, TrafficLog, isoNow, jsonLine, toRecord } from '../src/observe/log.js';

test('a request through the node layer gives exactly one log line whose route names node, service and pod, with hop timings', async (t) => {
  const r = range(150);
  const run = await startPortlab(r, [SEED]);
  try {
    const res = await request(`http://${r.node}:30000/one-line`);
    await res.body.dump();
    await waitFor(() => run.records.some((rec) => rec.path === '/one-line'), 'the log line');
    const lines = run.records.filter((rec) => rec.path === '/one-line');
    t.is(lines.length, 1);
    const line = lines[0]!;
    t.deepEqual(line.route, { node: `${r.node}:30000`, service: `${r.service(1)}:8080`, pod: `${r.pod(1)}:5000` });
    t.is(line.pod, 'my-service-standin');
    t.is(line.status, 200);
    t.deepEqual(line.hops.map((h) => h.layer), ['node', 'service']);
    for (const h of line.hops) {
      t.true(Number.isFinite(h.connectMs) && h.connectMs! >= 0, `${h.layer} connectMs`);
      t.true(Number.isFinite(h.durationMs) && h.durationMs! > 0, `${h.layer} durationMs`);
    }
    t.true(line.bytesOut! > 0);
    t.true(line.bytesIn! >= 'GET /one-line HTTP/1.1\r\n'.length, `a GET counts its request headers as bytes in (${line.bytesIn})`);
    // An L4 connection gives one line too, with its bytes.
    const l4 = await request(`http://${r.node}:31000/l4`, { dispatcher: new Agent({ pipelining: 0 }) });
    await l4.body.dump();
    await waitFor(() => run.records.some((rec) => rec.kind === 'connection' && rec.route.node === `${r.node}:31000`), 'the L4 line', 8000);
    const conn = run.records.find((rec) => rec.kind === 'connection')!;
    t.deepEqual(Object.keys(conn.route).sort(), ['node', 'pod', 'service']);
    t.true(conn.bytesIn! > 0 && conn.bytesOut! > 0);
  } finally {
    await run.close();
  }
});

/** metricValue finds one sample in Prometheus text. */
function metricValue(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.lastIndexOf('}'));
    const parsed = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => parsed[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

test('/metrics is Prometheus text and its counters match the traffic sent; /healthz and /livez answer 200', async (t) => {
  const r = range(151);
  const run = await startPortlab(r, [SEED]);
  const admin = `http://${r.admin}`;
  try {
    const scrape = async () => (await (await request(`${admin}/metrics`)).body.text());
    const key = 'default/my-service:http/TCP';
    const before = metricValue(await scrape(), 'portlab_http_requests_total', { service_port: key, layer: 'node', code_class: '2xx' });
    for (let i = 0; i < 10; i++) await (await request(`http://${r.node}:30000/`)).body.dump();
    const text = await scrape();
    // Every non-comment line is `name{labels} value` or `name value`: the exposition format.
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) t.regex(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+-]+|NaN|\+Inf$/);
    t.is(metricValue(text, 'portlab_http_requests_total', { service_port: key, layer: 'node', code_class: '2xx' }) - before, 10);
    t.is(metricValue(text, 'portlab_http_requests_total', { service_port: key, layer: 'service', code_class: '2xx' }), 0, 'only the first hop counts the request');
    t.true(metricValue(text, 'portlab_hop_duration_seconds_count', { service_port: key, layer: 'service' }) >= 10);
    t.true(metricValue(text, 'portlab_downstream_cx_total', { service_port: key, layer: 'node' }) >= 1);
    t.true(text.includes('portlab_sync_proxy_rules_last_timestamp_seconds '));
    t.true(text.includes('portlab_sync_proxy_rules_duration_seconds_count 1'));
    t.true(text.includes('portlab_process_open_fds '));
    const health = await request(`${admin}/healthz`);
    t.is(health.statusCode, 200);
    const body = (await health.body.json()) as { lastUpdated: string; currentTime: string };
    t.truthy(Date.parse(body.lastUpdated));
    t.truthy(Date.parse(body.currentTime));
    const live = await request(`${admin}/livez`);
    t.is(live.statusCode, 200);
    await live.body.dump();
  } finally {
    await run.close();
  }
});

test('routes -o json and -o wide print the translation table', async (t) => {
  const json = await runCli(['routes', '-o', 'json', '-f', SEED, '-f', 'fixtures/my-app.yml']);
  t.is(json.code, 0);
  const doc = JSON.parse(json.stdout) as { kind: string; items: { ports: { name: string; nodePort: number; port: number; targetPort: number; mode: string; endpoints: unknown[] }[] }[] };
  t.is(doc.kind, 'RouteList');
  t.deepEqual(
    doc.items[0]!.ports.map((p) => [p.name, p.nodePort, p.port, p.targetPort, p.mode, p.endpoints.length]),
    [
      ['http', 30000, 8080, 5000, 'http', 2],
      ['metrics', 31000, 8081, 6000, 'tcp', 2],
    ],
  );
  const wide = await runCli(['routes', '-o', 'wide', '-f', SEED, '-f', 'fixtures/my-app.yml']);
  t.regex(wide.stdout, /endpoint 127\.244\.0\.1:5000 {2}pod my-app-\w+-\w+ {2}node-1/);
});

test('JSON log lines written straight from a flow equal JSON.stringify of its record, escapes and left-out fields included', (t) => {
  const flows: Flow[] = [];
  const rejected = newFlow({ servicePort: 'default/a:http', protocol: 'TCP', mode: 'tcp', clientAddress: '127.0.0.1', clientPort: 1 });
  rejected.hops.push(newHop('service', '10.0.0.1:80'));
  rejected.error = 'no endpoints';
  flows.push(rejected);
  const request = newFlow({ servicePort: 'ns/b:web', protocol: 'TCP', mode: 'http', clientAddress: '::1', clientPort: 65535 });
  for (const layer of ['node', 'service'] as const) {
    const hop = newHop(layer, `127.0.0.1:${layer === 'node' ? 30000 : 8080}`);
    hop.upstream = '127.244.0.1:5000';
    hop.connectMs = 0.123456;
    hop.durationMs = 12.3456789;
    request.hops.push(hop);
  }
  Object.assign(request, { pod: '127.244.0.1:5000', podName: 'b-1', node: 'node-1', status: 200, method: 'GET', path: '/q?"x"=\\y&z=\u00e9\u2028\t\u0001\ud800', bytesIn: 10, bytesOut: 20 });
  request.error = 'upstream "quoted" failure';
  flows.push(request);
  const declined = newFlow({ servicePort: 'ns/b:web', protocol: 'TCP', mode: 'http', clientAddress: '127.0.0.1', clientPort: 2 });
  declined.note = 'Upgrade: h2c declined, served as HTTP/1.1';
  flows.push(declined);
  const udp = newFlow({ servicePort: 'default/dns:dns', protocol: 'UDP', mode: 'udp', clientAddress: '127.0.0.2', clientPort: 53 });
  flows.push(udp);
  // Durations are printed from integer microseconds; they must read as JSON.stringify prints the rounded double.
  const durations = [0, 0.0004, 0.0005, 0.0015, 0.001, 0.01, 0.1, 0.12, 1, 1.2, 12.3456789, 999.9995, 1_000_000.0005, 1e12 + 0.25, 1e13, 1e16, 1e300];
  for (let i = 0; i < 2000; i++) durations.push(Math.random() * 10 ** ((i % 8) - 3));
  for (const ms of durations) {
    const timed = newFlow({ servicePort: 'ns/c:web', protocol: 'TCP', mode: 'http', clientAddress: '127.0.0.3', clientPort: 3 });
    const hop = newHop('node', '127.0.0.1:30000');
    hop.connectMs = ms / 7;
    hop.durationMs = ms;
    timed.hops.push(hop);
    flows.push(timed);
  }
  const time = isoNow();
  for (const flow of flows) t.is(jsonLine(flow, time), JSON.stringify(toRecord(flow, time)));
  for (const at of [1700000000007, 1700000000000, 1700000000999, 1700000001010]) t.is(isoNow(at), new Date(at).toISOString());
});

test('the traffic log batches lines and flows in order within FLUSH_MS; a flow becomes its JSON line stamped when it was written', async (t) => {
  const writes: string[] = [];
  const out = { write: (chunk: Buffer | string) => writes.push(String(chunk)) } as unknown as NodeJS.WritableStream;
  const log = new TrafficLog('json', out, false);
  const flow = (i: number): Flow => {
    const f = newFlow({ servicePort: 'default/s:http/TCP', protocol: 'TCP', mode: 'http', clientAddress: '127.0.0.1', clientPort: 40000 + i });
    f.path = `/é/${i}`;
    f.hops.push(newHop('service', '127.0.0.2:80'));
    return f;
  };
  // Lines and flows interleaved: 1,200 entries, more than one batch holds, so full batches go out before the timer.
  const expected: string[] = [];
  const at = 1700000000123;
  for (let i = 0; i < 1200; i++) {
    if (i % 3 === 0) {
      const line = `{"n":${i},"path":"/ü/${'x'.repeat(i % 50)}"}`;
      log.write(line);
      expected.push(line);
    } else {
      const f = flow(i);
      log.writeFlow(f, at + i);
      expected.push(jsonLine(f, new Date(at + i).toISOString()));
    }
  }
  t.true(writes.length >= 2, `full batches went out before the timer: ${writes.length} writes`);
  await new Promise((resolve) => setTimeout(resolve, FLUSH_MS * 3));
  t.is(writes.join(''), `${expected.join('\n')}\n`, 'every entry, once, in order, each flow stamped with its own time');
  log.write('{"last":true}');
  log.flush();
  t.true(writes.join('').endsWith('{"last":true}\n'), 'flush (shutdown) writes what is pending');
  const quiet = new TrafficLog('none', out, false);
  const before = writes.length;
  quiet.writeFlow(flow(1));
  quiet.write('{"x":1}');
  quiet.flush();
  t.is(writes.length, before, '--quiet writes nothing');
});

test('text log: a legend line first, then lines that say what each number is and name the protocol once', (t) => {
  const chunks: string[] = [];
  const out = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
  const log = new TrafficLog('text', out, false);
  const base = { time: '2026-12-02T10:00:00.000Z', client: '127.0.0.1:40000', bytesIn: 79, bytesOut: 469, route: { node: '127.0.0.1:31000', service: '127.10.0.1:8081', pod: '127.244.0.1:6000' }, pod: 'p', node: 'node-1' };
  const hops = [
    { layer: 'node', listen: '127.0.0.1:31000', connectMs: 1.25, durationMs: 5.4 },
    { layer: 'service', listen: '127.10.0.1:8081', connectMs: 0.75, durationMs: 3.6 },
  ];
  log.write({ ...base, kind: 'connection', servicePort: 'default/my-service:metrics/TCP', protocol: 'TCP', mode: 'tcp', hops });
  log.write({ ...base, kind: 'session', servicePort: 'default/dns:dns/UDP', protocol: 'UDP', mode: 'udp', hops: hops.map(({ connectMs: _, ...h }) => h) });
  log.flush();
  const [legend, l4, udp] = chunks.join('').trimEnd().split('\n');
  t.regex(legend!, /^traffic log: .*↑bytes from the client ↓bytes to it.*time to connect to the next hop and the total time/);
  t.regex(l4!, /default\/my-service:metrics\/TCP connection 127\.0\.0\.1:40000 → node 127\.0\.0\.1:31000 → service 127\.10\.0\.1:8081 → pod p 127\.244\.0\.1:6000 {2}↑79B ↓469B {2}node: connect 1\.3ms total 5\.4ms · service: connect 750µs total 3\.6ms$/);
  t.is(l4!.match(/TCP/g)!.length, 1, 'the protocol is named once');
  t.regex(udp!, /default\/dns:dns\/UDP datagrams .* node: total 5\.4ms · service: total 3\.6ms$/);
});

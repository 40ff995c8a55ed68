// The cluster's shape: nodes, balancing, affinity, traffic policies, health checks, UDP and Service types.
import dgram from 'node:dgram';
import net from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { runCli } from './helpers/cli.js';
import { deployment, service } from './helpers/manifests.js';
import { SEED, range, startPortlab, tempManifest, waitFor, whoAnswers, type Range } from './helpers/portlab.js';

/** app returns a Deployment + Service manifest with the given Service spec lines. */
function app(name: string, replicas: number, serviceSpec: string, ports = '[{name: http, containerPort: 5000}]'): string {
  return deployment(name, replicas, { ports }) + service(name, `{app: ${name}}`, serviceSpec);
}

async function distribution(r: Range, balance: string, n: number): Promise<Map<string, number>> {
  const m = await tempManifest(app('dist', 3, `  type: NodePort\n  ports: [{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}]`));
  const run = await startPortlab(r, [m.file], ['--balance', balance, '--seed', '7', '--quiet']);
  const counts = new Map<string, number>();
  try {
    const batch = 50;
    for (let i = 0; i < n; i += batch) {
      const names = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => whoAnswers(r.node, 30000)));
      for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  } finally {
    await run.close();
    await m.cleanup();
  }
  return counts;
}

test('random balancing: 1,200 connections over 3 pods, each between 25% and 42%', async (t) => {
  // 400 expected per pod, with a standard deviation of 16: the bounds are six of them away.
  const counts = await distribution(range(140), 'random', 1200);
  t.is(counts.size, 3);
  for (const [pod, c] of counts) t.true(c >= 300 && c <= 504, `${pod}: ${c}`);
  t.log([...counts.values()].join(' / '));
});

test('round-robin balancing: 300 connections give exactly 100 each', async (t) => {
  const counts = await distribution(range(141), 'round-robin', 300);
  t.deepEqual([...counts.values()], [100, 100, 100]);
});

test('sessionAffinity ClientIP holds across 100 connections through the nodePort, then switches after the timeout', async (t) => {
  const r = range(142);
  // Holding is checked with a timeout no busy machine can outlast; expiry with a 1 s one, after waiting longer.
  const m = await tempManifest(
    `${app('sticky', 2, `  type: NodePort\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 3600}}\n  ports: [{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}]`)}
apiVersion: v1
kind: Service
metadata: {name: brief}
spec:
  type: NodePort
  selector: {app: sticky}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 1}}
  ports: [{name: tcp, port: 8080, targetPort: 5000, nodePort: 30001}]
`,
  );
  const run = await startPortlab(r, [m.file], ['--balance', 'round-robin', '--quiet']);
  try {
    const first = await whoAnswers(r.node, 30000, r.client);
    for (let i = 0; i < 100; i++) t.is(await whoAnswers(r.node, 30000, r.client), first);
    // Another client IP gets its own choice (round-robin: the other pod).
    t.not(await whoAnswers(r.node, 30000, `127.${r.n}.0.78`), first);
    // The 1 s Service: a client is held, and after the timeout it takes the next turn again.
    const held = await whoAnswers(r.node, 30001, r.client);
    t.is(await whoAnswers(r.node, 30001, r.client), held);
    t.not(await whoAnswers(r.node, 30001, `127.${r.n}.0.78`), held, 'round-robin gave the second client the other pod');
    t.is(await whoAnswers(r.node, 30001, `127.${r.n}.0.79`), held, 'and the third the first pod again, so the next turn is the other pod');
    await new Promise((res) => setTimeout(res, 1300)); // only waiting longer than the timeout can show it expire
    t.not(await whoAnswers(r.node, 30001, r.client), held, 'after timeoutSeconds the client is balanced again');
  } finally {
    await run.close();
    await m.cleanup();
  }
});

/** droppedLocal reads how many connections portlab dropped for a Local traffic policy at the node layer. */
async function droppedLocal(run: Awaited<ReturnType<typeof startPortlab>>): Promise<number> {
  const values = (await run.portlab.metrics.rejected.get()).values;
  return values.filter((v) => v.labels.reason === 'no_local_endpoint').reduce((n, v) => n + v.value, 0);
}

test('externalTrafficPolicy Local: only the pod\'s node serves; the others say nothing; Cluster serves everywhere', async (t) => {
  const r = range(144);
  const local = await tempManifest(app('local', 1, `  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}]`));
  let run = await startPortlab(r, [local.file], ['--nodes', '3', '--quiet']);
  try {
    const state = run.portlab.proxier.state!;
    const podNode = state.pods[0]!.node;
    for (const node of state.nodes) {
      if (node.name === podNode) {
        t.is(await whoAnswers(node.address, 30000), state.pods[0]!.name, `${node.name} has the pod`);
        continue;
      }
      // DROP: the connection is taken and nothing comes back. Wait for portlab to count the drop, then check silence.
      const before = await droppedLocal(run);
      const s = net.connect({ host: node.address, port: 30000 });
      let bytes = 0;
      let ended = false;
      s.on('data', (d) => (bytes += d.length));
      s.on('close', () => (ended = true));
      s.on('error', () => {});
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(async () => (await droppedLocal(run)) === before + 1, `${node.name} to drop the connection`);
      t.is(bytes, 0, `${node.name} has no local endpoint: DROP, no answer`);
      t.false(ended, `${node.name} neither refuses nor resets`);
      s.destroy();
    }
  } finally {
    await run.close();
    await local.cleanup();
  }
  const cluster = await tempManifest(app('local', 1, `  type: NodePort\n  externalTrafficPolicy: Cluster\n  ports: [{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}]`));
  run = await startPortlab(r, [cluster.file], ['--nodes', '3', '--quiet']);
  try {
    for (const node of run.portlab.proxier.state!.nodes) t.not(await whoAnswers(node.address, 30000), 'no answer');
  } finally {
    await run.close();
    await cluster.cleanup();
  }
});

test('LoadBalancer + Local: own address from 127.20.0.0/16, and healthCheckNodePort answers as kube-proxy does', async (t) => {
  const r = range(145);
  const m = await tempManifest(app('lb', 1, `  type: LoadBalancer\n  externalTrafficPolicy: Local\n  ports: [{name: tcp, port: 8080, targetPort: 5000}]`));
  const run = await startPortlab(r, [m.file], ['--nodes', '2', '--quiet']);
  try {
    const state = run.portlab.proxier.state!;
    const svc = state.services[0]!;
    t.is(svc.loadBalancerIP, `127.${r.n}.20.1`);
    t.is(svc.ports[0]!.nodePort, 30000);
    t.is(svc.healthCheckNodePort, 30001);
    t.is(await whoAnswers(svc.loadBalancerIP!, 8080), state.pods[0]!.name);
    for (const node of state.nodes) {
      const res = await request(`http://${node.address}:${svc.healthCheckNodePort}/healthz`);
      const body = (await res.body.json()) as { service: { namespace: string; name: string }; localEndpoints: number; serviceProxyHealthy: boolean };
      const hasPod = node.name === state.pods[0]!.node;
      t.is(res.statusCode, hasPod ? 200 : 503);
      t.deepEqual(body, { service: { namespace: 'default', name: 'lb' }, localEndpoints: hasPod ? 1 : 0, serviceProxyHealthy: true });
    }
  } finally {
    await run.close();
    await m.cleanup();
  }
});

test('internalTrafficPolicy Local: the cluster IP serves only pods on the client\'s node (node-1 for the host)', async (t) => {
  const r = range(146);
  const m = await tempManifest(app('itp', 2, `  internalTrafficPolicy: Local\n  ports: [{name: tcp, port: 8080, targetPort: 5000}]`));
  const run = await startPortlab(r, [m.file], ['--nodes', '2', '--quiet']);
  try {
    const state = run.portlab.proxier.state!;
    const onNode1 = state.pods.find((p) => p.node === 'node-1')!;
    for (let i = 0; i < 10; i++) t.is(await whoAnswers(state.services[0]!.clusterIP!, 8080), onNode1.name);
  } finally {
    await run.close();
    await m.cleanup();
  }
});

/** udpExchange sends from one socket and waits for the echo. */
async function udpExchange(sock: dgram.Socket, host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no UDP answer")), 10_000);
    sock.once('message', (msg) => {
      clearTimeout(timer);
      resolve(String(msg));
    });
    sock.send(text, port, host);
  });
}

test('UDP: echo through both hops, two clients keep separate sessions, a session ends after --udp-timeout; TCP shares the nodePort', async (t) => {
  const r = range(147);
  const m = await tempManifest(
    app('dns', 2, `  type: NodePort\n  ports:\n    - {name: dns-udp, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30053}\n    - {name: dns-tcp, port: 53, targetPort: 5353, protocol: TCP, nodePort: 30053}`, '[{name: dns-udp, containerPort: 5353, protocol: UDP}, {name: dns-tcp, containerPort: 5353}]'),
  );
  const run = await startPortlab(r, [m.file], ['--balance', 'round-robin', '--udp-timeout', '400ms']);
  const a = dgram.createSocket('udp4');
  const b = dgram.createSocket('udp4');
  await new Promise<void>((res) => a.bind(0, r.client, () => res()));
  await new Promise<void>((res) => b.bind(0, r.client, () => res()));
  try {
    t.is(await udpExchange(a, r.node, 30053, 'hello via node'), 'hello via node');
    t.is(await udpExchange(b, r.node, 30053, 'second client'), 'second client');
    t.is(await udpExchange(a, r.service(1), 53, 'hello via service'), 'hello via service');
    await waitFor(() => run.records.filter((rec) => rec.kind === 'session').length >= 3, 'the UDP sessions to end after the idle timeout', 3000);
    const sessions = run.records.filter((rec) => rec.kind === 'session');
    const viaNode = sessions.filter((s) => s.route.node);
    t.is(viaNode.length, 2);
    t.not(viaNode[0]!.client, viaNode[1]!.client);
    t.not(viaNode[0]!.pod, viaNode[1]!.pod, 'two clients, two sessions, two pods (round-robin)');
    t.true(viaNode.every((s) => s.client.startsWith(r.client)), 'the original client is known through the node hop');
    // TCP on the same nodePort and port number.
    t.truthy(await whoAnswers(r.node, 30053));
  } finally {
    a.close();
    b.close();
    await run.close();
    await m.cleanup();
  }
});

test('headless, ExternalName and SCTP: no listener, a note or a warning, the manifest stays valid', async (t) => {
  const m = await tempManifest(`${app('db', 2, `  clusterIP: None\n  ports: [{name: pg, port: 5432, targetPort: 5432}]`, '[{name: pg, containerPort: 5432}]')}
apiVersion: v1
kind: Service
metadata: {name: search}
spec:
  type: ExternalName
  externalName: search.example.com
---
apiVersion: v1
kind: Service
metadata: {name: signalling}
spec:
  selector: {app: sig}
  ports:
    - {name: sctp, port: 9999, protocol: SCTP}
    - {name: tcp, port: 9998}
`);
  const r = range(148);
  try {
    const routes = await runCli(['routes', '-f', m.file, ...r.args]);
    t.is(routes.code, 0, routes.stderr);
    t.regex(routes.stdout, /db\/pg {2}L4 {2}headless \(clusterIP: None\): no service listener; pods: 127\.148\.244\.1:5432, 127\.148\.244\.2:5432/);
    t.regex(routes.stdout, /search {2}ExternalName → search\.example\.com/);
    t.regex(routes.stderr, /signalling port sctp\/SCTP is skipped by the userspace proxy/);
    t.regex(routes.stdout, /signalling\/sctp {2}SCTP {2}not served by the userspace proxy/);
    const run = await startPortlab(r, [m.file], ['--quiet']);
    try {
      const state = run.portlab.proxier.state!;
      t.is(state.services.find((s) => s.name === 'db')!.clusterIP, undefined);
      // The SCTP port is in the desired state (the kernel rules need it) but has no userspace listener.
      t.deepEqual(state.services.find((s) => s.name === 'signalling')!.ports.map((p) => p.name), ['sctp', 'tcp']);
      t.deepEqual([...new Set(state.listeners.filter((l) => l.serviceKey === 'default/signalling').map((l) => l.protocol))], ['TCP']);
      const pod = state.pods.find((p) => p.name.startsWith('db-'))!;
      t.truthy(await whoAnswers(pod.ip, 5432));
    } finally {
      await run.close();
    }
  } finally {
    await m.cleanup();
  }
});

test('routes --hosts prints kubefwd-style lines; up --write-hosts adds and removes them', async (t) => {
  const r = range(149);
  const hosts = await runCli(['routes', '--hosts', '-f', SEED, ...r.args]);
  t.is(hosts.stdout.trim(), `${r.service(1)} my-service my-service.default my-service.default.svc my-service.default.svc.cluster.local`);
  const m = await tempManifest('127.0.0.1 localhost\n', 'hosts');
  const { startCli } = await import('./helpers/cli.js');
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--write-hosts', '--hosts-file', m.file]);
  try {
    const during = await readFile(m.file, 'utf8');
    t.true(during.includes(`${r.service(1)} my-service my-service.default`));
    t.true(during.startsWith('127.0.0.1 localhost\n'));
  } finally {
    t.is(await cli.stop(), 0);
  }
  t.is(await readFile(m.file, 'utf8'), '127.0.0.1 localhost\n');
  const unwritable = await runCli(['up', '-f', SEED, ...r.args, '--write-hosts', '--hosts-file', path.join(m.dir, 'no-such-dir', 'hosts')]);
  t.is(unwritable.code, 2);
  t.regex(unwritable.stderr, /cannot write .*no-such-dir\/hosts: ENOENT/);
  t.regex(unwritable.stderr, /portlab routes --hosts/);
  await writeFile(m.file, '');
  await m.cleanup();
});

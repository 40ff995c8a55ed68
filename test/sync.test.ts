// The data-plane table in use: replicas that come back, selectors that match nothing, named ports, slices matched by
// name, every workload kind, readiness, the shipped fixtures, UDP sessions that fail.
import dgram from 'node:dgram';
import net from 'node:net';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { Conntrack, newFlow } from '../src/forward/flow.js';
import { selectorless, tcpBackend } from './helpers/backends.js';
import { runCli, startCli } from './helpers/cli.js';
import { deployment, service } from './helpers/manifests.js';
import { FIXTURES, SEED, connectionOutcome, range, startPortlab, tempManifest, waitFor, whoAnswers } from './helpers/portlab.js';

/** nodePortService is a NodePort Service with a selector and a list of ports. */
function nodePortService(name: string, selector: string, ports = '[{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}]'): string {
  return service(name, selector, `  type: NodePort\n  ports: ${ports}`);
}

/** answering collects which pods answer `rounds` new connections. */
async function answering(host: string, port: number, rounds: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < rounds; i++) seen.add(await whoAnswers(host, port));
  return seen;
}

test('replicas come back: scale 2 → 1 → 2 and both answer again; a new pod template keeps the Service answering', async (t) => {
  const r = range(170);
  const two = deployment('web', 2) + nodePortService('web', '{app: web}');
  const m = await tempManifest(two);
  const run = await startPortlab(r, [m.file], ['--balance', 'round-robin', '--quiet']);
  try {
    const names = new Set(run.portlab.proxier.state!.pods.map((p) => p.name));
    t.deepEqual(await answering(r.node, 30000, 4), names);
    await writeFile(m.file, deployment('web', 1) + nodePortService('web', '{app: web}'));
    t.true((await run.portlab.reload()).ok);
    t.is((await answering(r.node, 30000, 4)).size, 1);
    await writeFile(m.file, two);
    t.true((await run.portlab.reload()).ok);
    t.deepEqual(await answering(r.node, 30000, 4), names, 'the replica that came back is an endpoint again');

    await writeFile(m.file, deployment('web', 1) + nodePortService('web', '{app: web}'));
    t.true((await run.portlab.reload()).ok);
    const before = [...(await answering(r.node, 30000, 1))][0]!;
    await writeFile(m.file, deployment('web', 1, { image: 'app:2' }) + nodePortService('web', '{app: web}'));
    const rollout = await run.portlab.reload();
    t.true(rollout.ok);
    const after = await whoAnswers(r.node, 30000);
    t.not(after, before, 'a new template makes a new pod');
    t.regex(after, /^web-\w+-\w+$/);
  } finally {
    await run.close();
    await m.cleanup();
  }
});

test('a selector that matches no pod has no endpoints when workloads exist: L4 reset, L7 503, and a warning naming the labels there are', async (t) => {
  const r = range(171);
  const yaml = deployment('web', 1) + nodePortService('web', '{app: Web}', '[{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}, {name: http, port: 8081, targetPort: 5000, nodePort: 30001}]');
  const m = await tempManifest(yaml);
  try {
    const routes = await runCli(['routes', '-f', m.file, ...r.args]);
    t.is(routes.code, 0);
    t.regex(routes.stderr, /warning: .*manifest\.yml:\d+:\d+: Service "web" selector app=Web matches no pod, so it has no endpoints \(connections are refused\); pods here have app=web\n/);
    const run = await startPortlab(r, [m.file], ['--quiet']);
    try {
      t.is(run.portlab.proxier.state!.pods.length, 1, 'no stand-in pod: the manifests hold a workload');
      t.is(await connectionOutcome(r.node, 30000, 10_000), 'reset');
      const res = await request(`http://${r.node}:30001/`);
      t.is(res.statusCode, 503);
      t.regex(await res.body.text(), /no ready endpoints for Service default\/web:http/);
    } finally {
      await run.close();
    }
    const always = await startPortlab(r, [m.file], ['--quiet', '--standins', 'always']);
    try {
      t.is(await whoAnswers(r.node, 30000), 'web-standin', '--standins always gives the Service a stand-in pod');
    } finally {
      await always.close();
    }
  } finally {
    await m.cleanup();
  }
});

test('the seed alone gets a stand-in pod, and says so in one line; --standins never leaves it without endpoints', async (t) => {
  const r = range(172);
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--quiet']);
  try {
    t.regex(cli.errors(), /^note: stand-in pods: the manifests hold no workload, so the Service with a selector gets one stand-in pod on its numeric targetPorts \(--standins never: none\)$/m);
    t.is(await whoAnswers(r.node, 31000), 'my-service-standin');
  } finally {
    t.is(await cli.stop(), 0);
  }
  const never = await startCli(['up', '-f', SEED, ...r.args, '--quiet', '--standins', 'never']);
  try {
    t.is(await connectionOutcome(r.node, 31000, 10_000), 'reset');
  } finally {
    await never.stop();
  }
});

test('a named targetPort that no selected pod declares is a warning, and the port has no endpoints', async (t) => {
  const r = range(173);
  const file = path.join(FIXTURES, 'valid', 'named-targetport-missing.yml');
  const validate = await runCli(['validate', '-f', file]);
  t.is(validate.code, 0, validate.stderr);
  t.regex(validate.stderr, /warning: .*named-targetport-missing\.yml:11:19: Service "my-service" port http: targetPort "web" names no TCP containerPort of 2 selected pod\(s\) \(Deployment\/my-app\), so they are not its endpoints/);
  const run = await startPortlab(r, [file], ['--quiet']);
  try {
    const res = await request(`http://${r.service(1)}:8080/`);
    t.is(res.statusCode, 503);
    await res.body.dump();
  } finally {
    await run.close();
  }
});

test('EndpointSlice ports match Service ports by name: a slice port "web" does not serve a Service port "http"', async (t) => {
  const r = range(174);
  const yaml = selectorless('mine', [{ name: 'tcp', port: 8080, targetPort: 5000 }], [r.backend(1)]).replace(/(ports:\n  - name: )tcp/, '$1web');
  const m = await tempManifest(yaml);
  try {
    const routes = await runCli(['routes', '-f', m.file, ...r.args]);
    t.regex(routes.stdout, /mine\/tcp  L4  service 127\.174\.10\.1:8080 → no endpoints/);
    t.regex(routes.stderr, /has no selector and no EndpointSlice or Endpoints whose ports match its port names/);
  } finally {
    await m.cleanup();
  }
});

test('every workload kind: ReplicationController, DaemonSet per node, StatefulSet pods selected by name, controller labels', async (t) => {
  const r = range(175);
  const yaml =
    deployment('rc', 2, { kind: 'ReplicationController' }) +
    deployment('ds', 0, { kind: 'DaemonSet' }) +
    deployment('web', 3, { kind: 'StatefulSet' }) +
    deployment('dep', 1) +
    nodePortService('rc', '{app: rc}', '[{name: tcp, port: 8080, targetPort: 5000, nodePort: 30000}]') +
    nodePortService('ds', '{app: ds}', '[{name: tcp, port: 8080, targetPort: 5000, nodePort: 30001}]') +
    nodePortService('web-1', '{statefulset.kubernetes.io/pod-name: web-1}', '[{name: tcp, port: 8080, targetPort: 5000, nodePort: 30002}]');
  const m = await tempManifest(yaml);
  const run = await startPortlab(r, [m.file], ['--nodes', '3', '--quiet']);
  try {
    const pods = run.portlab.proxier.state!.pods;
    t.is(pods.filter((p) => p.owner === 'ReplicationController/rc').length, 2);
    const ds = pods.filter((p) => p.owner === 'DaemonSet/ds');
    t.deepEqual(ds.map((p) => p.node).sort(), ['node-1', 'node-2', 'node-3'], 'one DaemonSet pod per node');
    t.truthy(ds[0]!.labels['controller-revision-hash']);
    const web1 = pods.find((p) => p.name === 'web-1')!;
    t.deepEqual(
      [web1.labels['statefulset.kubernetes.io/pod-name'], web1.labels['apps.kubernetes.io/pod-index'], web1.labels['controller-revision-hash']?.startsWith('web-')],
      ['web-1', '1', true],
    );
    const dep = pods.find((p) => p.owner === 'Deployment/dep')!;
    t.is(dep.name, `dep-${dep.labels['pod-template-hash']}-${dep.name.split('-').pop()}`, 'a Deployment pod is named after its pod-template-hash');
    const node = run.portlab.proxier.state!.nodes[0]!.address;
    t.is(await whoAnswers(node, 30002), 'web-1');
    t.regex(await whoAnswers(node, 30000), /^rc-\w{5}$/);
  } finally {
    await run.close();
    await m.cleanup();
  }
});

test('workloads are decoded strictly, and an unknown kind is named in a note', async (t) => {
  const m = await tempManifest(
    deployment('web', 1).replace('  replicas: 1', '  replica: 1') +
      nodePortService('web', '{app: web}') +
      'apiVersion: v1\nkind: Servic\nmetadata: {name: typo}\nspec: {}\n',
  );
  try {
    const bad = await runCli(['validate', '-f', m.file]);
    t.is(bad.code, 1);
    t.regex(bad.stderr, /manifest\.yml:5:3: Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec\.replica"/);
    await writeFile(m.file, deployment('web', 1) + nodePortService('web', '{app: web}') + 'apiVersion: v1\nkind: Servic\nmetadata: {name: typo}\nspec: {}\n');
    const ok = await runCli(['validate', '-f', m.file]);
    t.is(ok.code, 0, ok.stderr);
    t.regex(ok.stderr, /note: .*manifest\.yml:\d+:\d+: kind "Servic" is not read \(did you mean "Service"\?\)/);
  } finally {
    await m.cleanup();
  }
});

test('readiness you can show: a probe delay, then `pod unready` withdraws the endpoint and `pod ready` brings it back', async (t) => {
  const r = range(176);
  const m = await tempManifest(deployment('slow', 1, { container: ', readinessProbe: {initialDelaySeconds: 1}' }) + nodePortService('slow', '{app: slow}'));
  const cli = await startCli(['up', '-f', m.file, ...r.args, '--quiet']);
  try {
    const pod = (await (await request(`http://${r.admin}/api/topology`)).body.json()) as { state: { pods: { name: string; ready: boolean }[] } };
    const name = pod.state.pods[0]!.name;
    // Not ready yet (unless the machine is so slow the second has passed): then wait for the probe to pass.
    await waitFor(async () => (await whoAnswers(r.node, 30000)) === name, 'the readiness delay to pass', 30_000);
    const unready = await runCli(['pod', 'unready', name, '--admin', r.admin]);
    t.is(unready.code, 0, unready.stderr);
    t.regex(unready.stdout, /not ready: its endpoints are withdrawn/);
    t.is(await connectionOutcome(r.node, 30000, 10_000), 'reset', 'no ready endpoint: refused at once');
    const topology = (await (await request(`http://${r.admin}/api/topology`)).body.json()) as { state: { pods: { ready: boolean }[]; services: { ports: { endpoints: { ready: boolean }[] }[] }[] } };
    t.false(topology.state.pods[0]!.ready);
    t.false(topology.state.services[0]!.ports[0]!.endpoints[0]!.ready);
    t.is((await runCli(['pod', 'ready', name, '--admin', r.admin])).code, 0);
    t.is(await whoAnswers(r.node, 30000), name);
    const wide = await runCli(['routes', '-f', m.file, '-o', 'wide', ...r.args]);
    t.regex(wide.stdout, /endpoint 127\.176\.244\.1:5000 {2}pod slow-\w+-\w+ {2}node-1 {2}\(not ready for 1s: readinessProbe\.initialDelaySeconds\)/);
  } finally {
    t.is(await cli.stop(), 0);
    await m.cleanup();
  }
});

test('the readiness delay alone: the Service refuses until the probe passes', async (t) => {
  const r = range(177);
  const m = await tempManifest(deployment('slow', 1, { container: ', readinessProbe: {initialDelaySeconds: 3600}' }) + nodePortService('slow', '{app: slow}'));
  const run = await startPortlab(r, [m.file], ['--quiet']);
  try {
    t.is(await connectionOutcome(r.node, 30000, 10_000), 'reset', 'an hour-long probe delay: not an endpoint yet');
    const res = await request(`http://${run.portlab.proxier.state!.pods[0]!.ip}:5000/`);
    t.is(res.statusCode, 200, 'the pod itself runs');
    await res.body.dump();
    t.true(await run.portlab.pod(run.portlab.proxier.state!.pods[0]!.name, 'ready'));
    t.is(await whoAnswers(r.node, 30000), run.portlab.proxier.state!.pods[0]!.name);
  } finally {
    await run.close();
    await m.cleanup();
  }
});

test('every shipped valid fixture starts, one by one and as a directory', async (t) => {
  const r = range(178);
  const dir = path.join(FIXTURES, 'valid');
  const files = (await readdir(dir)).filter((f) => /\.(ya?ml|json)$/.test(f)).map((f) => path.join(dir, f));
  for (const file of [...files, dir]) {
    const cli = await startCli(['up', '-f', file, ...r.args, '--quiet']);
    t.regex(cli.output(), /ready: forwarding/, file);
    t.notRegex(cli.errors(), /--addresses shared/, file);
    t.is(await cli.stop(), 0, file);
  }
});

test('UDP conntrack is keyed by address and port', (t) => {
  const ct = new Conntrack();
  const flow = newFlow({ servicePort: 'default/dns:dns/UDP', protocol: 'UDP', mode: 'udp', clientAddress: '127.1.0.9', clientPort: 5353 });
  ct.trackUdp('127.1.0.1:40000', flow);
  t.is(ct.lookupUdp('127.1.0.1', 40000), flow);
  t.is(ct.lookupUdp('127.1.0.2', 40000), undefined, 'another address, the same port: another peer');
  ct.untrackUdp('127.1.0.1:40000', flow);
  t.is(ct.lookupUdp('127.1.0.1', 40000), undefined);
});

test('UDP: a session whose pod is not there is reported and cleaned up', async (t) => {
  const r = range(179);
  const m = await tempManifest(selectorless('dns', [{ name: 'dns', port: 5353, targetPort: 5353, protocol: 'UDP' }], [r.backend(1)]));
  const run = await startPortlab(r, [m.file], ['--udp-timeout', '1h']);
  const client = dgram.createSocket('udp4');
  await new Promise<void>((res) => client.bind(0, r.client, () => res()));
  try {
    client.send('where?', 5353, r.service(1));
    const failed = await waitFor(() => run.records.find((rec) => rec.kind === 'session' && rec.error), 'the failed session to be logged');
    t.regex(failed!.error!, new RegExp(`upstream ${r.backend(1).replaceAll('.', '\\.')}:5353: ECONNREFUSED`));
    const fails = (await run.portlab.metrics.upstreamConnectFail.get()).values;
    t.is(fails.find((v) => v.labels.code === 'ECONNREFUSED')?.value, 1);
    // The session is gone, not kept for an hour: the next datagram opens a new one, and fails again.
    client.send('again?', 5353, r.service(1));
    await waitFor(() => run.records.filter((rec) => rec.kind === 'session' && rec.error).length === 2, 'a second session');
    t.pass();
  } finally {
    client.close();
    await run.close();
    await m.cleanup();
  }
});

test('a listener that closes takes both sides of its connections: after the drain, the pod side closes too, and is logged', async (t) => {
  const r = range(180);
  const backend = await tcpBackend(r.backend(1), 5000, (s) => s.on('data', (d) => s.write(d)));
  const m = await tempManifest(selectorless('echo', [{ name: 'tcp', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]));
  const run = await startPortlab(r, [m.file], ['--drain-timeout', '300ms']);
  const client = net.connect({ host: r.node, port: 30000 });
  client.on('error', () => {});
  try {
    const closed = new Promise<void>((res) => client.once('close', () => res()));
    await new Promise<void>((res) => client.once('data', () => res()).write('ping'));
    t.is(backend.sockets.size, 1, 'node → service → pod: one connection reaches the pod');
    await writeFile(m.file, selectorless('other', [{ name: 'tcp', port: 9090, targetPort: 5000 }], [r.backend(1)]));
    t.true((await run.portlab.reload()).ok);
    await closed;
    await waitFor(() => backend.sockets.size === 0, 'the pod side of the drained connection to close');
    const record = await waitFor(() => run.records.find((rec) => rec.servicePort === 'default/echo:tcp/TCP'), 'the drained connection to be logged');
    t.is(record!.error, 'closed by portlab (listener closed)');
    t.deepEqual(Object.keys(record!.route), ['node', 'service', 'pod']);
  } finally {
    client.destroy();
    await run.close();
    await backend.close();
    await m.cleanup();
  }
});

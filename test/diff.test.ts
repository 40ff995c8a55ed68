// The desired state and its diff, without sockets: each kind of operation, their order, and what stays sticky.
import test from 'ava';
import { parseManifests } from '../src/manifest/load.js';
import { buildDesiredState, type DesiredState, type Overrides } from '../src/model/desired-state.js';
import { diff, type SyncOp } from '../src/model/diff.js';
import { deployment, service } from './helpers/manifests.js';
import { CLUSTER, PLAN } from './helpers/plan.js';

function svc(name: string, port = 8080, extra = ''): string {
  return service(name, `{app: ${name}}`, `  type: NodePort\n  ports: [{name: tcp, port: ${port}, targetPort: 5000${extra}}]`);
}

function plan(yaml: string, previous?: DesiredState, overrides?: Overrides): DesiredState {
  const parsed = parseManifests([{ file: 'x.yml', text: yaml }], CLUSTER);
  if (!parsed.manifests) throw new Error(parsed.problems.map((p) => p.message).join('\n'));
  const built = buildDesiredState(parsed.manifests, PLAN, previous, overrides);
  if (!built.state) throw new Error(built.problems.map((p) => p.message).join('\n'));
  return built.state;
}

/** summary prints ops as `op target`, in order. */
function summary(ops: SyncOp[]): string[] {
  return ops.map((o) => {
    if (o.op === 'start-pod' || o.op === 'update-pod') return `${o.op} ${o.pod.name}`;
    if (o.op === 'stop-pod') return `${o.op} ${o.pod.name}${o.crash ? ' (crash)' : ''}`;
    if (o.op === 'close') return `${o.op} ${o.listener.key}${o.swap ? ' (swap)' : ''}`;
    return `${o.op} ${o.listener.key}`;
  });
}

const BASE = deployment('web', 1) + svc('web');

test('the first sync starts pods, then opens service listeners before node listeners', (t) => {
  const state = plan(BASE);
  const ops = summary(diff(undefined, state));
  t.deepEqual(ops, [`start-pod ${state.pods[0]!.name}`, 'open 127.10.0.1:8080/TCP', 'open 127.0.0.1:30000/TCP']);
});

test('an unchanged table gives no operations, and keeps its objects', (t) => {
  const a = plan(BASE);
  const b = plan(BASE, a);
  t.deepEqual(diff(a, b), []);
  t.is(b.services[0], a.services[0]);
  t.is(b.listeners[0], a.listeners[0]);
});

test('open and close: a Service added and one removed; the freed nodePort goes to the newcomer as a swap', (t) => {
  const a = plan(BASE);
  const b = plan(deployment('api', 1) + svc('api', 9090), a);
  const ops = summary(diff(a, b));
  t.deepEqual(ops, [
    `start-pod ${b.pods[0]!.name}`,
    'close 127.0.0.1:30000/TCP (swap)',
    'open 127.10.0.2:9090/TCP',
    'open 127.0.0.1:30000/TCP',
    'close 127.10.0.1:8080/TCP',
    `stop-pod ${a.pods[0]!.name}`,
  ]);
  t.is(b.services[0]!.clusterIP, '127.10.0.2', 'the leaving Service\'s cluster IP is not handed out at once');
});

test('set-route: a replica added changes the routes of open listeners, and nothing is reopened', (t) => {
  const a = plan(BASE);
  const b = plan(deployment('web', 2) + svc('web'), a);
  const ops = summary(diff(a, b));
  t.deepEqual(ops, [`start-pod ${b.pods.find((p) => p.key !== a.pods[0]!.key)!.name}`, 'set-route 127.10.0.1:8080/TCP', 'set-route 127.0.0.1:30000/TCP']);
});

test('close and open as a swap: a port that changes from L4 to L7 on the same address', (t) => {
  const a = plan(BASE);
  const b = plan(deployment('web', 1) + svc('web', 8080, ', appProtocol: http'), a);
  t.deepEqual(summary(diff(a, b)), ['close 127.10.0.1:8080/TCP (swap)', 'close 127.0.0.1:30000/TCP (swap)', 'open 127.10.0.1:8080/TCP', 'open 127.0.0.1:30000/TCP']);
});

test('update-pod: a pod that keeps its address and gains a port is updated in place', (t) => {
  const a = plan(BASE);
  const b = plan(BASE.replace(`ports: [{name: tcp, port: 8080, targetPort: 5000}]`, `ports: [{name: tcp, port: 8080, targetPort: 5000}, {name: extra, port: 8081, targetPort: 6000}]`), a);
  const ops = summary(diff(a, b));
  t.is(ops[0], `update-pod ${a.pods[0]!.name}`);
  t.deepEqual(b.pods[0]!.ports.map((p) => p.containerPort), [5000, 6000]);
  t.true(ops.includes('open 127.10.0.1:8081/TCP'));
});

test('stop-pod as a crash, and start-pod again: a killed pod is withdrawn before it stops, and comes back', (t) => {
  const a = plan(deployment('web', 2) + svc('web'));
  const victim = a.pods[0]!;
  const killed = plan(deployment('web', 2) + svc('web'), a, new Map([[victim.key, { killed: true }]]));
  t.deepEqual(summary(diff(a, killed)), ['set-route 127.10.0.1:8080/TCP', 'set-route 127.0.0.1:30000/TCP', `stop-pod ${victim.name} (crash)`]);
  const route = killed.listeners.find((l) => l.layer === 'service')!.route as { endpoints: { podName?: string }[] };
  t.deepEqual(route.endpoints.map((e) => e.podName), [a.pods[1]!.name]);
  const back = plan(deployment('web', 2) + svc('web'), killed, new Map([[victim.key, { killed: false }]]));
  t.deepEqual(summary(diff(killed, back)), [`start-pod ${victim.name}`, 'set-route 127.10.0.1:8080/TCP', 'set-route 127.0.0.1:30000/TCP']);
  t.is(back.pods[0]!.ip, victim.ip, 'the same name and the same address');
});

test('stop-pod, gracefully: a replica scaled away stops after the routes no longer name it', (t) => {
  const a = plan(deployment('web', 2) + svc('web'));
  const b = plan(BASE, a);
  const ops = summary(diff(a, b));
  t.deepEqual(ops.slice(-1), [`stop-pod ${a.pods.find((p) => !b.pods.some((q) => q.key === p.key))!.name}`]);
  t.true(ops.slice(0, -1).every((o) => o.startsWith('set-route')));
});

test('scale 2 → 1 → 2: the replica that comes back has its old name and is an endpoint again', (t) => {
  const two = plan(deployment('web', 2) + svc('web'));
  const one = plan(BASE, two);
  const again = plan(deployment('web', 2) + svc('web'), one);
  t.deepEqual(again.pods.map((p) => p.name).sort(), two.pods.map((p) => p.name).sort());
  const endpoints = again.services[0]!.ports[0]!.endpoints;
  t.is(endpoints.length, 2);
  t.true(endpoints.every((e) => e.ready));
});

test('a new pod template gets a new pod on a fresh address, never the leaving pod\'s', (t) => {
  const a = plan(BASE);
  const b = plan(deployment('web', 1, { image: 'app:2' }) + svc('web'), a);
  t.not(b.pods[0]!.name, a.pods[0]!.name);
  t.not(b.pods[0]!.ip, a.pods[0]!.ip, 'the old pod still listens until the new one is in the routes');
  t.deepEqual(summary(diff(a, b)).map((o) => o.split(' ')[0]), ['start-pod', 'set-route', 'set-route', 'stop-pod']);
});

test('an added Service never moves another Service\'s nodePort or cluster IP', (t) => {
  const a = plan(deployment('b-web', 1) + svc('b-web'));
  t.is(a.services[0]!.ports[0]!.nodePort, 30000);
  // "a-api" sorts first: fresh, it would take 30000 and 127.10.0.1.
  const b = plan(deployment('b-web', 1) + svc('b-web') + deployment('a-api', 1) + svc('a-api', 9090), a);
  const web = b.services.find((s) => s.name === 'b-web')!;
  const api = b.services.find((s) => s.name === 'a-api')!;
  t.is(web.ports[0]!.nodePort, 30000);
  t.is(web.clusterIP, '127.10.0.1');
  t.is(api.ports[0]!.nodePort, 30001);
  t.is(api.clusterIP, '127.10.0.2');
  t.deepEqual(summary(diff(a, b)).filter((o) => o.includes('127.0.0.1:3000')), ['open 127.0.0.1:30001/TCP']);
});

test('readiness: a probe delay keeps a pod out of the endpoints until it passes; unready and ready are overrides', (t) => {
  const yaml = deployment('slow', 1, { container: ', readinessProbe: {initialDelaySeconds: 5}' }) + svc('slow');
  const a = plan(yaml);
  t.is(a.pods[0]!.readinessDelayMs, 5000);
  t.false(a.services[0]!.ports[0]!.endpoints[0]!.ready);
  t.deepEqual((a.listeners[0]!.route as { endpoints: unknown[] }).endpoints, []);
  const key = a.pods[0]!.key;
  const passed = plan(yaml, a, new Map([[key, { probePassed: true }]]));
  t.true(passed.services[0]!.ports[0]!.endpoints[0]!.ready);
  t.deepEqual(summary(diff(a, passed)), ['update-pod ' + a.pods[0]!.name, 'set-route 127.10.0.1:8080/TCP', 'set-route 127.0.0.1:30000/TCP']);
  const unready = plan(yaml, passed, new Map([[key, { probePassed: true, ready: false }]]));
  t.false(unready.services[0]!.ports[0]!.endpoints[0]!.ready);
});

test('publishNotReadyAddresses: a not-ready pod is still an endpoint, as the EndpointSlice controller publishes it; a killed one is not', (t) => {
  const yaml = deployment('slow', 1, { container: ', readinessProbe: {initialDelaySeconds: 5}' }) + service('slow', '{app: slow}', '  publishNotReadyAddresses: true\n  ports: [{name: tcp, port: 8080, targetPort: 5000}]');
  const a = plan(yaml);
  t.true(a.services[0]!.ports[0]!.endpoints[0]!.ready);
  const killed = plan(yaml, a, new Map([[a.pods[0]!.key, { killed: true }]]));
  t.false(killed.services[0]!.ports[0]!.endpoints[0]!.ready);
});

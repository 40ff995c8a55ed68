// The manifest layer, without sockets: every invalid fixture gives its exact message, every valid one plans.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { parseManifests } from '../src/manifest/load.js';
import { formatProblem } from '../src/manifest/problems.js';
import { buildDesiredState } from '../src/model/desired-state.js';
import { CLUSTER, PLAN } from './helpers/plan.js';
import { FIXTURES } from './helpers/portlab.js';

async function plan(rel: string, text?: string) {
  const source = { file: rel, text: text ?? (await readFile(path.join(FIXTURES, '..', rel), 'utf8')) };
  const parsed = parseManifests([source], CLUSTER);
  // As printed: a problem with context (a YAML syntax error's source lines and hint) spans several lines.
  if (!parsed.manifests) return { problems: parsed.problems.flatMap((p) => formatProblem(p).split('\n')) };
  const built = buildDesiredState(parsed.manifests, PLAN);
  return { state: built.state, problems: built.problems.map((p) => `${p.where}: ${p.message}`) };
}

const invalid = (await readdir(path.join(FIXTURES, 'invalid'))).filter((f) => f.endsWith('.yml')).sort();

for (const name of invalid) {
  test(`invalid fixture ${name} gives its exact message`, async (t) => {
    const rel = `fixtures/invalid/${name}`;
    const expected = (await readFile(path.join(FIXTURES, 'invalid', name.replace(/\.yml$/, '.expected')), 'utf8')).trimEnd().split('\n');
    const { problems, state } = await plan(rel);
    t.is(state, undefined);
    t.deepEqual(problems, expected);
  });
}

test('the nodePort range message, character for character as the API server writes it', async (t) => {
  const { problems } = await plan('fixtures/invalid/nodeport-out-of-range.yml');
  t.deepEqual(problems, [
    'fixtures/invalid/nodeport-out-of-range.yml:14:17: The Service "my-service" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767',
  ]);
});

test('every error is reported, not just the first', async (t) => {
  const { problems } = await plan('fixtures/invalid/many-errors.yml');
  t.true(problems.length >= 6);
  t.true(problems.some((p) => p.includes('metadata.name')));
  t.true(problems.some((p) => p.includes('spec.type')));
  t.true(problems.some((p) => p.includes('spec.ports[1].name: Duplicate value')));
});

test('the seed: NodePort inferred from nodePort, with a warning; one default stand-in pod on 5000 and 6000', async (t) => {
  const { state, problems } = await plan('fixtures/my-service.yml');
  t.deepEqual(problems, []);
  const svc = state!.services[0]!;
  t.is(svc.type, 'NodePort');
  t.is(svc.clusterIP, '127.10.0.1');
  t.deepEqual(
    svc.ports.map((p) => [p.name, p.nodePort, p.port, p.targetPort, p.mode]),
    [
      ['http', 30000, 8080, 5000, 'http'],
      ['metrics', 31000, 8081, 6000, 'tcp'],
    ],
  );
  t.is(state!.pods.length, 1);
  t.deepEqual(state!.pods[0]!.ports.map((p) => p.containerPort), [5000, 6000]);
  t.regex(state!.warnings[0]!, /sets nodePort but not spec\.type; treating it as type: NodePort/);
});

test('kubectl get -o yaml output (kind: List, status, managedFields, clusterIP) plans like the seed', async (t) => {
  const { state, problems } = await plan('fixtures/valid/kubectl-get-list.yml');
  t.deepEqual(problems, []);
  t.is(state!.services[0]!.clusterIP, '127.10.0.1');
  t.is(state!.pods.length, 2);
  t.true(state!.notes.some((n) => n.includes('asks for clusterIP 10.96.123.45')));
});

test('JSON manifests are read too', async (t) => {
  const { state, problems } = await plan('fixtures/valid/my-service.json');
  t.deepEqual(problems, []);
  t.is(state!.services[0]!.ports[1]!.nodePort, 31000);
});

test('named targetPort resolves through containerPorts; StatefulSet pods are name-0..n', async (t) => {
  const { state } = await plan('fixtures/valid/named-targetport.yml');
  const sp = state!.services[0]!.ports[0]!;
  t.deepEqual(sp.endpoints.map((e) => [e.podName, e.port]), [['web-0', 8080], ['web-1', 8080], ['web-2', 8080]]);
  t.deepEqual(state!.pods.map((p) => p.ip), ['127.244.0.1', '127.244.0.2', '127.244.0.3']);
  t.is(sp.nodePort, 30000, 'allocated deterministically: the lowest free nodePort');
});

test('EndpointSlice and Endpoints give selector-less Services their endpoints; other kinds are noted', async (t) => {
  const { state } = await plan('fixtures/valid/mixed-kinds.yml');
  const byName = new Map(state!.services.map((s) => [s.name, s]));
  t.deepEqual(byName.get('my-own-app')!.ports[0]!.endpoints.map((e) => `${e.ip}:${e.port}`), ['127.0.0.1:5000']);
  t.deepEqual(byName.get('legacy')!.ports[0]!.endpoints.map((e) => `${e.ip}:${e.port}`), ['127.0.0.53:5353']);
  t.is(byName.get('legacy')!.ports[0]!.mode, 'udp');
  t.deepEqual(byName.get('solo')!.ports[0]!.endpoints.map((e) => e.podName), ['solo']);
  t.true(state!.notes.some((n) => n.includes('kind "ConfigMap" is not read')));
});

test('addresses are deterministic: the same manifests give the same addresses and pod names', async (t) => {
  const a = await plan('fixtures/valid/kubectl-get-list.yml');
  const b = await plan('fixtures/valid/kubectl-get-list.yml');
  t.deepEqual(
    a.state!.pods.map((p) => [p.name, p.ip]),
    b.state!.pods.map((p) => [p.name, p.ip]),
  );
});

test('appProtocol http, and names http / http-*, choose L7; others L4; UDP is UDP', async (t) => {
  const { state } = await plan(
    'inline.yml',
    `apiVersion: v1
kind: Service
metadata: {name: modes}
spec:
  selector: {app: m}
  ports:
    - {name: http, port: 1}
    - {name: http-admin, port: 2}
    - {name: web, port: 3, appProtocol: http}
    - {name: grpc, port: 4}
    - {name: dns, port: 5, protocol: UDP}
    - {name: httpx, port: 6}
`,
  );
  t.deepEqual(state!.services[0]!.ports.map((p) => p.mode), ['http', 'http', 'http', 'tcp', 'udp', 'tcp']);
});

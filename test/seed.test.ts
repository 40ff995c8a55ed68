// The seed's Service end to end: a request at the pod, service and node layer of both ports reaches a stand-in pod.
import test from 'ava';
import { Agent, request } from 'undici';
import { MY_APP, SEED, range, startPortlab } from './helpers/portlab.js';

interface PodAnswer {
  pod: string;
  podIP: string;
  node: string;
  port: number;
  portName: string | null;
  path: string;
  headers: Record<string, string>;
  client: string;
}

async function get(agent: Agent, url: string): Promise<PodAnswer> {
  const res = await request(url, { dispatcher: agent });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as PodAnswer;
}

test('seed alone: one default stand-in pod answers on 5000 and 6000 at every layer', async (t) => {
  const r = range(100);
  const run = await startPortlab(r, [SEED]);
  const agent = new Agent({ localAddress: r.client });
  try {
    const state = run.portlab.proxier.state!;
    t.is(state.pods.length, 1);
    const pod = state.pods[0]!;
    t.is(pod.name, 'my-service-standin');
    t.deepEqual(pod.ports.map((p) => p.containerPort).sort(), [5000, 6000]);
    const svc = state.services[0]!;
    t.is(svc.clusterIP, r.service(1));
    for (const [portName, nodePort, port, targetPort] of [['http', 30000, 8080, 5000], ['metrics', 31000, 8081, 6000]] as const) {
      const layers = {
        node: `http://${r.node}:${nodePort}/via/node`,
        service: `http://${svc.clusterIP}:${port}/via/service`,
        pod: `http://${pod.ip}:${targetPort}/via/pod`,
      };
      for (const [layer, url] of Object.entries(layers)) {
        const answer = await get(agent, url);
        t.is(answer.pod, pod.name, `${portName} at ${layer}`);
        t.is(answer.port, targetPort, `${portName} at ${layer}`);
        t.is(answer.portName, portName);
        t.is(answer.podIP, pod.ip);
        t.is(answer.path, `/via/${layer}`);
        t.regex(answer.client, /^127\.\d+\.\d+\.\d+:\d+$/);
        if (layer === 'pod') t.is(answer.client.split(':')[0], r.client, 'the pod sees the client directly');
        // L7 (http) tells the pod the original client in X-Forwarded-For, even through the node → service hop.
        if (portName === 'http' && layer !== 'pod') t.is(answer.headers['x-forwarded-for'], r.client);
        if (portName === 'metrics') t.false('x-forwarded-for' in answer.headers, 'L4 adds nothing to the bytes');
      }
    }
    // One log line per request or connection, whose route names every hop.
    const viaNode = run.records.find((rec) => rec.path === '/via/node');
    t.truthy(viaNode);
    t.deepEqual(Object.keys(viaNode!.route).sort(), ['node', 'pod', 'service']);
  } finally {
    await agent.close();
    await run.close();
  }
});

test('seed with my-app: two replicas, both reachable through the nodePort', async (t) => {
  const r = range(101);
  const run = await startPortlab(r, [SEED, MY_APP], ['--balance', 'round-robin']);
  const agent = new Agent({ localAddress: r.client });
  try {
    const state = run.portlab.proxier.state!;
    t.is(state.pods.length, 2);
    t.true(state.pods.every((p) => /^my-app-[a-z0-9]+-[a-z0-9]{5}$/.test(p.name)));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get(agent, `http://${r.node}:30000/`)).pod);
    t.deepEqual([...seen].sort(), state.pods.map((p) => p.name).sort());
    const metrics = new Set<string>();
    for (let i = 0; i < 6; i++) metrics.add((await get(new Agent(), `http://${r.node}:31000/`)).pod);
    t.is(metrics.size, 2, 'L4 balances per connection');
  } finally {
    await agent.close();
    await run.close();
  }
});

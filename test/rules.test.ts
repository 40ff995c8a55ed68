// kube-proxy's own tests are the specification of `portlab rules` and `portlab trace`: the overall-rules tests line
// for line, and the packet-flow tests case for case, in both kernel modes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { nodeFor, ruleset } from '../src/rules/ruleset.js';
import { parseOptions } from '../src/cli/options.js';
import { planFromFiles } from '../src/model/plan.js';
import { systemTool } from '../src/kernel/tools.js';
import { base32 } from '../src/rules/names.js';
import { traceIptables, traceNftables } from '../src/rules/trace.js';
import { runCli } from './helpers/cli.js';
import { ROOT, SEED, tempManifest } from './helpers/portlab.js';
import { scaleManifests } from '../src/bench/plan.js';

// kube-proxy's test conventions: pods in 10.0.0.0/8, Services in 172.30.0.0/16, node "test-node" at 192.168.0.2.
const KUBE_FLAGS = ['--node-name', 'test-node', '--node-address', '192.168.0.2', '--pod-cidr', '10.0.0.0/8', '--service-cidr', '172.30.0.0/16', '--nodeport-range', '3000-32767'];
// The addresses kube-proxy's tests treat as the node's own (testNodeIPs): the node IP, a second one, an external IP.
const NODE_IPS = ['192.168.0.2', '192.168.1.2', '192.168.99.11'];
const MODES = ['nftables', 'iptables'] as const;
type Mode = (typeof MODES)[number];

async function rulesFor(yaml: string, mode: Mode): Promise<string> {
  const options = parseOptions(['rules', '-f', '-', '--proxy-mode', mode, ...KUBE_FLAGS]);
  const state = await planFromFiles(options, undefined, async () => yaml);
  return ruleset(state, nodeFor(state, options), mode);
}

/** normalized compares as kube-proxy's tests do: comments and blank lines out, rules in order per chain, the rest as a set. */
function normalizedNft(text: string): string[] {
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
  const rules = new Map<string, string[]>();
  const others: string[] = [];
  for (const l of lines) {
    const m = /^add rule ip \S+ (\S+) /.exec(l);
    if (m) rules.set(m[1]!, [...(rules.get(m[1]!) ?? []), l]);
    else others.push(l);
  }
  return [...others.sort(), ...[...rules.keys()].sort().flatMap((k) => rules.get(k)!)];
}

function normalizedIpt(text: string): string[] {
  const out: string[] = [];
  for (const table of text.split('COMMIT').map((t) => t.split('\n').filter((l) => l && !l.startsWith('#')))) {
    if (table.length === 0) continue;
    const rules = new Map<string, string[]>();
    for (const l of table.filter((l) => l.startsWith('-A '))) {
      const chain = l.split(' ')[1]!;
      rules.set(chain, [...(rules.get(chain) ?? []), l]);
    }
    out.push(table[0]!, ...table.filter((l) => l.startsWith(':')).sort(), ...[...rules.keys()].sort().flatMap((k) => rules.get(k)!));
  }
  return out;
}

test('chain names are kube-proxy\'s: base32 of SHA-256, as in its tests', (t) => {
  t.is(base32(Buffer.from('foobar')), 'MZXW6YTBOI'); // RFC 4648's test vector, without padding
});

test('nftables: the overall test\'s Services give exactly kube-proxy\'s expected transaction', async (t) => {
  const yaml = readFileSync(path.join(ROOT, 'fixtures/kube-proxy/overall.yml'), 'utf8');
  const expected = readFileSync(path.join(ROOT, 'fixtures/kube-proxy/overall.nft'), 'utf8');
  t.deepEqual(normalizedNft(await rulesFor(yaml, 'nftables')), normalizedNft(expected));
});

test('iptables: the overall test\'s Services give exactly kube-proxy\'s expected restore input', async (t) => {
  const yaml = readFileSync(path.join(ROOT, 'fixtures/kube-proxy/overall.yml'), 'utf8');
  const expected = readFileSync(path.join(ROOT, 'fixtures/kube-proxy/overall.iptables'), 'utf8');
  // The only difference: kube-proxy's fake iptables has no --random-fully, and a real node's has.
  const printed = (await rulesFor(yaml, 'iptables')).replace(' -j MASQUERADE --random-fully', ' -j MASQUERADE');
  t.deepEqual(normalizedIpt(printed), normalizedIpt(expected));
});

// ---- packet-flow tests -------------------------------------------------------------------------------------

interface Flow {
  name: string;
  from: string;
  to: string;
  port: number;
  protocol?: 'tcp' | 'udp' | 'sctp';
  output: string;
  masq?: boolean;
  /** iptables gives these instead, as kube-proxy's iptables tests expect: it has no cluster-IP checks, and accepts
   * nodePorts on every local address. */
  iptables?: { output: string; masq?: boolean };
}

const svc = (ns: string, name: string, spec: object, status?: object) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec, ...(status ? { status } : {}) });
const slice = (ns: string, name: string, endpoints: object[], ports: object[] = [{ name: 'p80', port: 80, protocol: 'TCP' }]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${name}-1`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
  addressType: 'IPv4',
  endpoints,
  ports,
});
const ep = (ip: string, nodeName?: string, conditions?: object) => ({ addresses: [ip], ...(nodeName ? { nodeName } : {}), ...(conditions ? { conditions } : {}) });
const lb = (ip: string) => ({ loadBalancer: { ingress: [{ ip }] } });
const yaml = (...docs: object[]) => docs.map((d) => JSON.stringify(d)).join('\n---\n');
const p80 = (extra: object = {}) => [{ name: 'p80', port: 80, protocol: 'TCP', ...extra }];
const EXTERNAL = '203.0.113.2';
const BLOCKED = '203.0.113.130';
const NODE = '192.168.0.2';

function flowTests(title: string, manifest: string, flows: Flow[]): void {
  for (const mode of MODES) {
    test(`${mode} trace: ${title}`, async (t) => {
      const rules = await rulesFor(manifest, mode);
      for (const f of flows) {
        const want = mode === 'iptables' && f.iptables ? { output: f.iptables.output, masq: f.iptables.masq ?? false } : { output: f.output, masq: f.masq ?? false };
        const result = (mode === 'nftables' ? traceNftables : traceIptables)(rules, { source: f.from, destination: f.to, port: f.port, protocol: f.protocol ?? 'tcp' }, NODE_IPS);
        t.deepEqual({ output: result.output, masq: result.masquerade }, want, `${f.name}\n${result.path.map((s) => `${s.chain}: ${s.rule} → ${s.effect}`).join('\n')}`);
      }
    });
  }
}

flowTests(
  'TestNoEndpointsReject: no endpoints rejects at the cluster IP, external IP, nodePort and load balancer',
  yaml(svc('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: p80({ nodePort: 3001 }) }, lb('1.2.3.4'))),
  [
    { name: 'pod to cluster IP with no endpoints', from: '10.0.0.2', to: '172.30.0.41', port: 80, output: 'REJECT' },
    { name: 'external to external IP with no endpoints', from: EXTERNAL, to: '192.168.99.11', port: 80, output: 'REJECT' },
    { name: 'pod to NodePort with no endpoints', from: '10.0.0.2', to: NODE, port: 3001, output: 'REJECT' },
    { name: 'external to NodePort with no endpoints', from: EXTERNAL, to: NODE, port: 3001, output: 'REJECT' },
    { name: 'pod to LoadBalancer IP with no endpoints', from: '10.0.0.2', to: '1.2.3.4', port: 80, output: 'REJECT' },
    { name: 'external to LoadBalancer IP with no endpoints', from: EXTERNAL, to: '1.2.3.4', port: 80, output: 'REJECT' },
  ],
);

flowTests(
  'TestClusterIPGeneral: ports, target ports, TCP, UDP and SCTP on one port, hairpin',
  yaml(
    svc('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }),
    svc('ns2', 'svc2', {
      clusterIP: '172.30.0.42',
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'https', port: 443, protocol: 'TCP', targetPort: 8443 },
        { name: 'dns-udp', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 },
        { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
      ],
    }),
    slice('ns1', 'svc1', [ep('10.180.0.1', 'test-node')], [{ name: 'http', port: 80, protocol: 'TCP' }]),
    slice('ns2', 'svc2', [ep('10.180.0.1', 'test-node'), ep('10.180.2.1', 'node2')], [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'https', port: 8443, protocol: 'TCP' },
      { name: 'dns-udp', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 5353, protocol: 'TCP' },
      { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
    ]),
  ),
  [
    { name: 'simple clusterIP', from: '10.180.0.2', to: '172.30.0.41', port: 80, output: '10.180.0.1:80' },
    { name: 'hairpin to cluster IP', from: '10.180.0.1', to: '172.30.0.41', port: 80, output: '10.180.0.1:80', masq: true },
    { name: 'clusterIP with multiple endpoints', from: '10.180.0.2', to: '172.30.0.42', port: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'clusterIP with TargetPort', from: '10.180.0.2', to: '172.30.0.42', port: 443, output: '10.180.0.1:8443, 10.180.2.1:8443' },
    { name: 'TCP on a shared port', from: '10.180.0.2', to: '172.30.0.42', port: 53, protocol: 'tcp', output: '10.180.0.1:5353, 10.180.2.1:5353' },
    { name: 'UDP on a shared port', from: '10.180.0.2', to: '172.30.0.42', port: 53, protocol: 'udp', output: '10.180.0.1:53, 10.180.2.1:53' },
    { name: 'SCTP on a shared port', from: '10.180.0.2', to: '172.30.0.42', port: 53, protocol: 'sctp', output: '10.180.0.1:53, 10.180.2.1:53' },
    { name: 'TCP-only port does not match UDP traffic', from: '10.180.0.2', to: '172.30.0.42', port: 80, protocol: 'udp', output: 'REJECT', iptables: { output: '' } },
    { name: "svc1 does not accept svc2's ports", from: '10.180.0.2', to: '172.30.0.41', port: 443, output: 'REJECT', iptables: { output: '' } },
    { name: 'packet to unallocated cluster ip', from: '10.180.0.2', to: '172.30.0.50', port: 80, output: 'DROP', iptables: { output: '' } },
  ],
);

flowTests(
  'TestLoadBalancer: source ranges filter load balancer traffic but not nodePorts',
  yaml(
    svc('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', loadBalancerSourceRanges: ['192.168.0.0/24', ' 203.0.113.0/25'], ports: p80({ nodePort: 3001 }) }, { loadBalancer: { ingress: [{ ip: '1.2.3.4' }, { ip: '5.6.7.8' }] } }),
    slice('ns1', 'svc1', [ep('10.180.0.1')]),
  ),
  [
    { name: 'pod to cluster IP', from: '10.0.0.2', to: '172.30.0.41', port: 80, output: '10.180.0.1:80' },
    { name: 'external to nodePort', from: EXTERNAL, to: NODE, port: 3001, output: '10.180.0.1:80', masq: true },
    { name: 'nodePort bypasses LoadBalancerSourceRanges', from: BLOCKED, to: NODE, port: 3001, output: '10.180.0.1:80', masq: true },
    { name: 'accepted external to LB1', from: EXTERNAL, to: '1.2.3.4', port: 80, output: '10.180.0.1:80', masq: true },
    { name: 'accepted external to LB2', from: EXTERNAL, to: '5.6.7.8', port: 80, output: '10.180.0.1:80', masq: true },
    { name: 'blocked external to LB1', from: BLOCKED, to: '1.2.3.4', port: 80, output: 'DROP' },
    { name: 'blocked external to LB2', from: BLOCKED, to: '5.6.7.8', port: 80, output: 'DROP' },
    { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', from: '10.0.0.2', to: '1.2.3.4', port: 80, output: 'DROP' },
    { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', from: '10.0.0.2', to: '5.6.7.8', port: 80, output: 'DROP' },
    { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', from: NODE, to: '1.2.3.4', port: 80, output: '10.180.0.1:80', masq: true },
    { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', from: NODE, to: '5.6.7.8', port: 80, output: '10.180.0.1:80', masq: true },
    { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', from: '1.2.3.4', to: '1.2.3.4', port: 80, output: '10.180.0.1:80', masq: true },
    { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', from: '5.6.7.8', to: '5.6.7.8', port: 80, output: '10.180.0.1:80', masq: true },
  ],
);

flowTests(
  'TestNodePorts: a nodePort on the node IP; nftables accepts it on the primary IP only',
  yaml(svc('ns1', 'svc1', { type: 'NodePort', clusterIP: '172.30.0.41', ports: p80({ nodePort: 3001 }) }), slice('ns1', 'svc1', [ep('10.180.0.1'), ep('10.180.2.1', 'test-node')])),
  [
    { name: 'pod to cluster IP', from: '10.0.0.2', to: '172.30.0.41', port: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'external to nodePort', from: EXTERNAL, to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'node to nodePort', from: NODE, to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'secondary nodeIP ignores NodePorts', from: EXTERNAL, to: '192.168.1.2', port: 3001, output: '', iptables: { output: '10.180.0.1:80, 10.180.2.1:80', masq: true } },
  ],
);

const twoEndpoints = slice('ns1', 'svc1', [ep('10.180.0.1'), ep('10.180.2.1', 'test-node')]);
flowTests(
  'TestExternalTrafficPolicyLocal: external traffic reaches only the local endpoint, unmasqueraded',
  yaml(svc('ns1', 'svc1', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], healthCheckNodePort: 30000, ports: p80({ nodePort: 3001, targetPort: 80 }) }, lb('1.2.3.4')), twoEndpoints),
  [
    { name: 'pod to cluster IP hits both endpoints', from: '10.0.0.2', to: '172.30.0.41', port: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'pod to external IP hits both endpoints', from: '10.0.0.2', to: '192.168.99.11', port: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'external to external IP hits only local endpoint', from: EXTERNAL, to: '192.168.99.11', port: 80, output: '10.180.2.1:80' },
    { name: 'pod to LB IP hits both endpoints', from: '10.0.0.2', to: '1.2.3.4', port: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'external to LB IP hits only local endpoint', from: EXTERNAL, to: '1.2.3.4', port: 80, output: '10.180.2.1:80' },
    { name: 'pod to NodePort hits both endpoints', from: '10.0.0.2', to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'external to NodePort hits only local endpoint', from: EXTERNAL, to: NODE, port: 3001, output: '10.180.2.1:80' },
  ],
);

flowTests(
  'TestExternalTrafficPolicyCluster: external traffic reaches every endpoint, masqueraded',
  yaml(svc('ns1', 'svc1', { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', clusterIP: '172.30.0.41', externalIPs: ['192.168.99.11'], ports: p80({ nodePort: 3001, targetPort: 80 }) }, lb('1.2.3.4')), twoEndpoints),
  [
    { name: 'pod to cluster IP hits both endpoints, unmasqueraded', from: '10.0.0.2', to: '172.30.0.41', port: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'pod to external IP', from: '10.0.0.2', to: '192.168.99.11', port: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'external to external IP', from: EXTERNAL, to: '192.168.99.11', port: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'pod to LB IP', from: '10.0.0.2', to: '1.2.3.4', port: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'external to LB IP', from: EXTERNAL, to: '1.2.3.4', port: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'pod to NodePort', from: '10.0.0.2', to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    { name: 'external to NodePort', from: EXTERNAL, to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
  ],
);

const itp = (policy: string, nodes: string[]) =>
  yaml(
    svc('ns1', 'svc1', { clusterIP: '172.30.1.1', internalTrafficPolicy: policy, ports: [{ port: 80, protocol: 'TCP' }] }),
    slice('ns1', 'svc1', nodes.map((n, i) => ep(`10.0.1.${i + 1}`, n, { ready: true })), [{ name: '', port: 80, protocol: 'TCP' }]),
  );
const podToSvc = (output: string): Flow => ({ name: `pod to ClusterIP: ${output}`, from: '10.0.0.2', to: '172.30.1.1', port: 80, output });
flowTests('TestInternalTrafficPolicy: Cluster hits all endpoints', itp('Cluster', ['test-node', 'node1', 'node2']), [podToSvc('10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80')]);
flowTests('TestInternalTrafficPolicy: Local hits the one local endpoint', itp('Local', ['test-node', 'node1', 'node2']), [podToSvc('10.0.1.1:80')]);
flowTests('TestInternalTrafficPolicy: Local hits every local endpoint', itp('Local', ['test-node', 'test-node', 'node2']), [podToSvc('10.0.1.1:80, 10.0.1.2:80')]);
flowTests('TestInternalTrafficPolicy: Local with no local endpoint drops', itp('Local', ['node0', 'node1', 'node2']), [podToSvc('DROP')]);
flowTests('TestInternalTrafficPolicy: endpoints deleted', yaml(svc('ns1', 'svc1', { clusterIP: '172.30.1.1', internalTrafficPolicy: 'Local', ports: [{ port: 80, protocol: 'TCP' }] })), [podToSvc('REJECT')]);

const READY = { ready: true, serving: true, terminating: false };
const TERMINATING = { ready: false, serving: true, terminating: true };
const GONE = { ready: false, serving: false, terminating: true };
function terminating(policy: 'Local' | 'Cluster', endpoints: object[]): string {
  const spec = { type: 'LoadBalancer', externalTrafficPolicy: policy, clusterIP: '172.30.1.1', ...(policy === 'Local' ? { healthCheckNodePort: 30000 } : {}), ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }] };
  return yaml(svc('ns1', 'svc1', spec, lb('1.2.3.4')), slice('ns1', 'svc1', endpoints, [{ name: '', port: 80, protocol: 'TCP' }]));
}
const both = (cluster: string, external: string, masq: boolean): Flow[] => [
  { name: 'pod to clusterIP', from: '10.0.0.2', to: '172.30.1.1', port: 80, output: cluster },
  { name: 'external to LB', from: EXTERNAL, to: '1.2.3.4', port: 80, output: external, masq },
];
flowTests(
  'TestTerminatingEndpointsTrafficPolicyLocal: ready endpoints exist',
  terminating('Local', [ep('10.0.1.1', 'test-node', READY), ep('10.0.1.2', 'test-node', READY), ep('10.0.1.3', 'test-node', TERMINATING), ep('10.0.1.4', 'test-node', GONE), ep('10.0.1.5', 'node-1', READY)]),
  both('10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', '10.0.1.1:80, 10.0.1.2:80', false),
);
flowTests(
  'TestTerminatingEndpointsTrafficPolicyLocal: only terminating endpoints exist',
  terminating('Local', [ep('10.0.1.2', 'test-node', TERMINATING), ep('10.0.1.3', 'test-node', TERMINATING), ep('10.0.1.4', 'test-node', GONE), ep('10.0.1.5', 'node-1', READY)]),
  both('10.0.1.5:80', '10.0.1.2:80, 10.0.1.3:80', false),
);
flowTests('TestTerminatingEndpointsTrafficPolicyLocal: terminating endpoints on remote node', terminating('Local', [ep('10.0.1.5', 'node-1', TERMINATING)]), both('10.0.1.5:80', 'DROP', false));
flowTests('TestTerminatingEndpointsTrafficPolicyLocal: no usable endpoints on any node', terminating('Local', [ep('10.0.1.5', 'test-node', GONE), ep('10.0.1.6', 'node-1', GONE)]), both('REJECT', 'REJECT', false));
flowTests(
  'TestTerminatingEndpointsTrafficPolicyCluster: ready endpoints exist',
  terminating('Cluster', [ep('10.0.1.1', 'test-node', READY), ep('10.0.1.2', 'test-node', READY), ep('10.0.1.3', 'another-node', TERMINATING), ep('10.0.1.4', 'another-node', GONE), ep('10.0.1.5', 'another-node', READY)]),
  both('10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', true),
);
flowTests(
  'TestTerminatingEndpointsTrafficPolicyCluster: only terminating endpoints exist',
  terminating('Cluster', [ep('10.0.1.2', 'test-node', TERMINATING), ep('10.0.1.3', 'test-node', TERMINATING), ep('10.0.1.4', 'another-node', GONE), ep('10.0.1.5', 'another-node', TERMINATING)]),
  both('10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', true),
);
flowTests('TestTerminatingEndpointsTrafficPolicyCluster: terminating endpoints on remote node', terminating('Cluster', [ep('10.0.1.5', 'node-1', TERMINATING)]), both('10.0.1.5:80', '10.0.1.5:80', true));
flowTests('TestTerminatingEndpointsTrafficPolicyCluster: no usable endpoints on any node', terminating('Cluster', [ep('10.0.1.5', 'test-node', GONE), ep('10.0.1.6', 'node-1', GONE)]), both('REJECT', 'REJECT', false));

const mixed = (n: number) => [ep(`10.180.0.${n}`, 'test-node'), ep(`10.180.1.${n}`, 'remote')];
flowTests(
  'TestInternalExternalMasquerade: who is masqueraded, from pods, the node and outside, per traffic policy',
  yaml(
    svc('ns1', 'svc1', { type: 'LoadBalancer', clusterIP: '172.30.0.41', ports: p80({ nodePort: 3001 }) }, lb('1.2.3.4')),
    svc('ns2', 'svc2', { type: 'LoadBalancer', clusterIP: '172.30.0.42', externalTrafficPolicy: 'Local', healthCheckNodePort: 30002, ports: p80({ nodePort: 3002 }) }, lb('5.6.7.8')),
    svc('ns3', 'svc3', { type: 'LoadBalancer', clusterIP: '172.30.0.43', internalTrafficPolicy: 'Local', ports: p80({ nodePort: 3003 }) }, lb('9.10.11.12')),
    slice('ns1', 'svc1', mixed(1)),
    slice('ns2', 'svc2', mixed(2)),
    slice('ns3', 'svc3', mixed(3)),
  ),
  [
    { name: 'pod to ClusterIP', from: '10.0.0.2', to: '172.30.0.41', port: 80, output: '10.180.0.1:80, 10.180.1.1:80' },
    { name: 'pod to NodePort', from: '10.0.0.2', to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'pod to LB', from: '10.0.0.2', to: '1.2.3.4', port: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to ClusterIP', from: NODE, to: '172.30.0.41', port: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to NodePort', from: NODE, to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to LB', from: NODE, to: '1.2.3.4', port: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'external to ClusterIP', from: EXTERNAL, to: '172.30.0.41', port: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'external to NodePort', from: EXTERNAL, to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'external to LB', from: EXTERNAL, to: '1.2.3.4', port: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'pod to ClusterIP with eTP:Local', from: '10.0.0.2', to: '172.30.0.42', port: 80, output: '10.180.0.2:80, 10.180.1.2:80' },
    { name: 'pod to NodePort with eTP:Local', from: '10.0.0.2', to: NODE, port: 3002, output: '10.180.0.2:80, 10.180.1.2:80' },
    { name: 'pod to LB with eTP:Local', from: '10.0.0.2', to: '5.6.7.8', port: 80, output: '10.180.0.2:80, 10.180.1.2:80' },
    { name: 'node to ClusterIP with eTP:Local', from: NODE, to: '172.30.0.42', port: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: true },
    { name: 'node to NodePort with eTP:Local', from: NODE, to: NODE, port: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to LB with eTP:Local', from: NODE, to: '5.6.7.8', port: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: true },
    { name: 'external to ClusterIP with eTP:Local', from: EXTERNAL, to: '172.30.0.42', port: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: true },
    { name: 'external to NodePort with eTP:Local', from: EXTERNAL, to: NODE, port: 3002, output: '10.180.0.2:80' },
    { name: 'external to LB with eTP:Local', from: EXTERNAL, to: '5.6.7.8', port: 80, output: '10.180.0.2:80' },
    { name: 'pod to ClusterIP with iTP:Local', from: '10.0.0.2', to: '172.30.0.43', port: 80, output: '10.180.0.3:80' },
    { name: 'pod to NodePort with iTP:Local', from: '10.0.0.2', to: NODE, port: 3003, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'pod to LB with iTP:Local', from: '10.0.0.2', to: '9.10.11.12', port: 80, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'node to ClusterIP with iTP:Local', from: NODE, to: '172.30.0.43', port: 80, output: '10.180.0.3:80', masq: true },
    { name: 'node to NodePort with iTP:Local', from: NODE, to: NODE, port: 3003, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'node to LB with iTP:Local', from: NODE, to: '9.10.11.12', port: 80, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'external to ClusterIP with iTP:Local', from: EXTERNAL, to: '172.30.0.43', port: 80, output: '10.180.0.3:80', masq: true },
    { name: 'external to NodePort with iTP:Local', from: EXTERNAL, to: NODE, port: 3003, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'external to LB with iTP:Local', from: EXTERNAL, to: '9.10.11.12', port: 80, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
  ],
);

// ---- the real tools ------------------------------------------------------------------------------------------

/** inNamespace runs a shell script in a network namespace of its own, so no rule reaches the machine's tables. */
function inNamespace(script: string, input: string): { ok: boolean; out: string } {
  const r = spawnSync('unshare', ['-n', 'sh', '-c', script], { input, encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` };
}

const canUnshare = inNamespace('true', '').ok;
const TOOLS = { nftables: 'nft', iptables: 'iptables-restore' } as const;

for (const mode of MODES) {
  test(`${mode}: the real ${TOOLS[mode]} loads the seed's rules and the overall test's, in a private network namespace`, async (t) => {
    const tool = systemTool(TOOLS[mode]);
    if (!canUnshare || !tool) {
      if (process.env.CI) t.fail(`CI needs unshare -n and ${TOOLS[mode]} (.ci/run installs nftables and iptables)`);
      else t.log(`skipped: unshare -n or ${TOOLS[mode]} is not available here`);
      t.pass();
      return;
    }
    const seedYaml = readFileSync(SEED, 'utf8') + '\n---\n' + readFileSync(path.join(ROOT, 'fixtures/my-app.yml'), 'utf8');
    for (const [name, manifest] of [['seed', seedYaml], ['overall', readFileSync(path.join(ROOT, 'fixtures/kube-proxy/overall.yml'), 'utf8')]] as const) {
      const rules = await rulesFor(manifest, mode);
      // nftables: load it for real, then list it back; iptables: check mode (its nfacct counters need the nfacct tool).
      const r = mode === 'nftables' ? inNamespace(`${tool} -f - && ${tool} list table ip kube-proxy`, rules) : inNamespace(`${tool} --test`, rules);
      t.true(r.ok, `${name}: ${r.out}`);
      if (mode === 'nftables') t.regex(r.out, /chain services \{/, name);
    }
  });
}

test('the CLI: `portlab rules` prints, `portlab trace` walks, and bad flags say what to give', async (t) => {
  const rules = await runCli(['rules', '-f', SEED, '--proxy-mode', 'iptables']);
  t.is(rules.code, 0, rules.stderr);
  t.regex(rules.stdout, /^-A KUBE-SERVICES -m comment --comment "default\/my-service:http cluster IP" -m tcp -p tcp -d 127\.10\.0\.1 --dport 8080 -j KUBE-SVC-/m);
  const walk = await runCli(['trace', '-f', SEED, '--proxy-mode', 'nftables', '--from', '192.168.7.7', '--to', '127.0.0.1:30000']);
  t.is(walk.code, 0, walk.stderr);
  t.regex(walk.stdout, /\[prerouting, nat, priority -100\]/);
  t.regex(walk.stdout, /result: DNAT to 127\.244\.0\.1:5000/);
  t.regex(walk.stdout, /masquerade: yes/);
  const json = await runCli(['trace', '-f', SEED, '--proxy-mode', 'iptables', '--from', '127.244.0.9', '--to', '127.10.0.1:8081', '-o', 'json']);
  const parsed = JSON.parse(json.stdout) as { output: string; masquerade: boolean; path: unknown[] };
  t.is(parsed.output, '127.244.0.1:6000');
  t.false(parsed.masquerade);
  t.true(parsed.path.length > 3);
  const missing = await runCli(['rules', '-f', SEED]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /rules needs --proxy-mode nftables or --proxy-mode iptables/);
  const badTo = await runCli(['trace', '-f', SEED, '--proxy-mode', 'nftables', '--from', '10.0.0.1', '--to', 'nowhere']);
  t.is(badTo.code, 2);
  t.regex(badTo.stderr, /--to "nowhere": expected IP:PORT/);
});

test('docs/rules.md shows rules and a walk that portlab prints today', async (t) => {
  const page = readFileSync(path.join(ROOT, 'docs/rules.md'), 'utf8');
  const shown = page.split('\n').filter((l) => /^(add (rule|chain|element) ip kube-proxy |-A KUBE-)/.test(l));
  t.true(shown.length > 15);
  const options = parseOptions(['rules', '-f', SEED, '--proxy-mode', 'nftables']);
  const state = await planFromFiles(options);
  const actual = ruleset(state, nodeFor(state, options), 'nftables') + ruleset(state, nodeFor(state, options), 'iptables');
  t.deepEqual(shown.filter((l) => !actual.includes(l)), [], 'rule lines on the page that portlab no longer prints');
  const walk = await runCli(['trace', '-f', SEED, '--proxy-mode', 'nftables', '--from', '192.168.7.7', '--to', '127.0.0.1:30000']);
  const block = page.slice(page.indexOf('$ npx portlab trace')).split('```')[0]!.split('\n').slice(1).filter(Boolean);
  t.deepEqual(block, walk.stdout.trimEnd().split('\n'));
});

test('a large ruleset reaches a pipe whole: the CLI exits only once its output is written', async (t) => {
  // 1,500 Services print over 1 MiB: far past a pipe's 64 KiB, so the end of the output is still queued at exit.
  const files = scaleManifests(1500);
  const dir = await tempManifest(`${files.changed}---\n${files.rest}`, 'many.yml');
  try {
    const flags = ['-f', dir.file, '--proxy-mode', 'iptables'];
    const r = await runCli(['rules', ...flags], undefined, 60_000);
    t.is(r.code, 0, r.stderr);
    const state = await planFromFiles(parseOptions(['rules', ...flags]));
    const want = ruleset(state, nodeFor(state, parseOptions(['rules', ...flags])), 'iptables');
    t.true(want.length > 1 << 20);
    t.is(r.stdout.length, `${want.trimEnd()}\n`.length, 'every byte of the restore input');
    t.true(r.stdout.endsWith('COMMIT\n'));
  } finally {
    await dir.cleanup();
  }
});

// The kernel translates: --proxy-mode nftables and iptables, each in a network namespace the test creates, with the
// real nft, iptables and conntrack. Traffic goes through kube-proxy's rules to portlab's stand-in pods.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { parseOptions } from '../src/cli/options.js';
import { planFromFiles } from '../src/model/plan.js';
import { jumpRules } from '../src/rules/iptables.js';
import { getsScript, Netns, netnsSupport } from './helpers/netns.js';
import { CHROMIUM, headless } from './helpers/chromium.js';
import { runCli } from './helpers/cli.js';
import { CLI, MY_APP, SEED, tempManifest, waitFor } from './helpers/portlab.js';

const MODES = ['nftables', 'iptables'] as const;
type Mode = (typeof MODES)[number];
const TOOLS: Record<Mode, string[]> = { nftables: ['nft', 'conntrack'], iptables: ['iptables', 'iptables-restore', 'conntrack'] };

/** ready gives the namespace, or says why the test cannot run: a failure in CI, a skip elsewhere. */
async function namespace(t: import('ava').ExecutionContext, mode: Mode): Promise<Netns | undefined> {
  const missing = netnsSupport(TOOLS[mode]);
  if (missing) {
    if (process.env.CI) t.fail(`CI must run the kernel tests: ${missing} (.ci/run installs nftables, iptables, conntrack and iproute2)`);
    else t.log(`skipped: ${missing}`);
    t.pass();
    return undefined;
  }
  return Netns.create();
}

/** tablesLeft lists what portlab left in the kernel: its nftables table, or its iptables chains. */
async function tablesLeft(ns: Netns, mode: Mode): Promise<string> {
  if (mode === 'nftables') return (await ns.run('nft', ['list', 'tables'])).stdout.trim();
  const nat = await ns.run('iptables', ['-w', '-t', 'nat', '-S']);
  const filter = await ns.run('iptables', ['-w', '-t', 'filter', '-S']);
  return `${nat.stdout}${filter.stdout}`.split('\n').filter((l) => l.includes('PORTLAB')).join('\n');
}

const STICKY = `apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: MyApp}
  sessionAffinity: ClientIP
  ports: [{name: http, port: 9090, targetPort: 5000}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing-here}
  ports: [{name: http, port: 9091, targetPort: 5000}]
`;

for (const mode of MODES) {
  test(`${mode}: the kernel carries the seed to its pods, balances, keeps affinity, rejects without endpoints, logs and counts, reloads, and cleans up`, async (t) => {
    const ns = await namespace(t, mode);
    if (!ns) return;
    const dir = await tempManifest(readFileSync(SEED, 'utf8'), 'my-service.yml');
    writeFileSync(path.join(dir.dir, 'my-app.yml'), readFileSync(MY_APP, 'utf8'));
    writeFileSync(path.join(dir.dir, 'extra.yml'), STICKY);
    const args = ['-f', dir.dir, '--proxy-mode', mode, '--log-format', 'json', '--watch', '--standins', 'never'];
    // The addresses are portlab's defaults: the same plan, made here.
    const plan = await planFromFiles(parseOptions(['routes', '-f', dir.dir, '--standins', 'never']));
    const ip = (name: string) => plan.services.find((s) => s.name === name)!.clusterIP!;
    try {
      let run = await ns.portlab(args);
      t.regex(run.output(), new RegExp(`kernel: ${mode}`));
      t.regex(await tablesLeft(ns, mode), mode === 'nftables' ? /table ip portlab/ : /PORTLAB-SERVICES/);
      if (mode === 'iptables') {
        // The jumps from the built-in chains stand in kube-proxy's order.
        for (const [table, chain] of [['filter', 'INPUT'], ['filter', 'OUTPUT'], ['nat', 'OUTPUT']] as const) {
          const listed = (await ns.run('iptables', ['-w', '-t', table, '-S', chain])).stdout;
          const want = jumpRules().filter((j) => j.table === table && j.from === chain).map((j) => j.to.replace('KUBE-', 'PORTLAB-'));
          t.deepEqual([...listed.matchAll(/-j (PORTLAB-\S+)/g)].map((m) => m[1]), want, `${table} ${chain}`);
        }
      }
      // The seed's layers, by the node and the Service address.
      const first = await ns.node<{ status: number; pod: string }[]>(getsScript([`http://127.0.0.1:30000/`, `http://${ip('my-service')}:8081/`]));
      t.deepEqual(first.map((r) => r.status), [200, 200]);
      t.true(first.every((r) => r.pod?.startsWith('my-app-')));
      // Balancing: a new connection each time, both replicas answer.
      const many = await ns.node<{ pod: string }[]>(getsScript(Array(40).fill('http://127.0.0.1:30000/')));
      t.is(new Set(many.map((r) => r.pod)).size, 2, 'both replicas answered 40 new connections');
      // Session affinity: one client, one pod.
      const sticky = await ns.node<{ pod: string }[]>(getsScript(Array(12).fill(`http://${ip('sticky')}:9090/`)));
      t.is(new Set(sticky.map((r) => r.pod)).size, 1, 'ClientIP affinity keeps one pod');
      // No endpoints: the kernel rejects the connection at once.
      const empty = await ns.node<{ error: string }[]>(getsScript([`http://${ip('empty')}:9091/`]));
      t.is(empty[0]!.error, 'ECONNREFUSED');
      // The kernel's flows are logged and counted as the userspace ones are.
      await waitFor(() => run.output().includes(`"route":{"node":"127.0.0.1:30000","pod":"127.244.`), 'a kernel flow in the log', 10_000);
      const flow = JSON.parse(run.output().split('\n').find((l) => l.includes(`"route":{"node":"127.0.0.1:30000","pod":"127.244.`))!) as { kernel: string; bytesIn: number; bytesOut: number; pod: string };
      t.is(flow.kernel, mode);
      t.true(flow.bytesIn > 0 && flow.bytesOut > 0, 'conntrack accounting (on in the test namespace) gives the bytes');
      t.true(flow.pod.startsWith('my-app-'));
      const metrics = await ns.node<{ body: string }>(`const r = await fetch('http://127.0.0.1:10249/metrics'); process.stdout.write(JSON.stringify({ body: await r.text() }));`);
      t.regex(metrics.body, /portlab_downstream_cx_total\{service_port="default\/my-service:http\/TCP",layer="node"\} [1-9]/);
      // The dashboard shows the kernel's mode, its DNAT, and counts the kernel's flows (a plain headless Chromium).
      if (existsSync(CHROMIUM)) {
        const dom = await headless(['--dump-dom', 'http://127.0.0.1:10249/'], (cmd, a) => ns.spawn(cmd, a));
        t.regex(dom.stdout, new RegExp(`kernel: ${mode} · synced`), dom.stderr.slice(-1000));
        t.regex(dom.stdout, /:8080\/TCP DNAT http/);
        t.regex(dom.stdout, /data-testid="count-default\/my-service:http\/TCP">[1-9]/);
      } else if (process.env.CI) t.fail(`no browser at ${CHROMIUM}`);
      // The rules' own counters: connections dispatched to the Service at each layer, and the one refused.
      const kernelMetric = (metric: string, labels: string) => new RegExp(`portlab_kernel_rule_${metric}_total\\{service_port="${labels.replace(/[/.]/g, '\\$&')}"\\} ([1-9]\\d*)`).exec(metrics.body)?.[1];
      t.truthy(kernelMetric('packets', 'default/my-service:http/TCP",layer="node",verdict="dnat'), 'nodePort connections counted');
      t.truthy(kernelMetric('packets', 'default/my-service:metrics/TCP",layer="service",verdict="dnat'), 'cluster IP connections counted');
      t.truthy(kernelMetric('bytes', 'default/my-service:http/TCP",layer="node",verdict="dnat'));
      t.is(kernelMetric('packets', 'default/empty:http/TCP",layer="service",verdict="reject'), '1', 'the refused connection counted once');
      // A reload adds one port and removes another; a keep-alive connection open on a third lives through it.
      const held = ns.spawn(process.execPath, ['--input-type=module', '-e', HOLD_SCRIPT(ip('my-service'))]);
      const heldOut = collect(held);
      await waitFor(() => heldOut.text.includes('asked'), 'the first request on the held connection', 15_000);
      const withExtra = readFileSync(SEED, 'utf8').replace('  ports:\n', '  ports:\n    - name: extra\n      port: 8082\n      targetPort: 5000\n      nodePort: 30002\n');
      writeFileSync(dir.file, withExtra);
      await waitFor(() => /reload: /.test(run.output()), 'the reload', 15_000);
      const added = await ns.node<{ status: number }[]>(getsScript(['http://127.0.0.1:30002/']));
      t.is(added[0]!.status, 200, 'the added port answers through the kernel');
      const reloads = () => run.output().split('reload: ').length;
      const before = reloads();
      writeFileSync(dir.file, withExtra.replace(/    - name: http\n(      .*\n)+?(?=    - )/, ''));
      await waitFor(() => reloads() > before, 'the second reload', 15_000);
      const removed = await ns.node<{ status?: number; error?: string }[]>(getsScript(['http://127.0.0.1:30000/'], 1000));
      t.not(removed[0]!.status, 200, 'the removed port no longer answers');
      held.stdin!.end('go\n');
      await waitFor(() => heldOut.text.includes(']'), 'the second request on the held connection', 15_000);
      t.deepEqual(JSON.parse(heldOut.text.slice(heldOut.text.indexOf('['))), ['200', '200'], 'a keep-alive connection on the unchanged port answered before and after both reloads');
      // SIGTERM removes every rule.
      t.is(await run.stop(), 0, run.errors());
      t.is(await tablesLeft(ns, mode), '', 'nothing left after SIGTERM');
      // kill -9 leaves the rules; the next start clears them and starts clean.
      run = await ns.portlab(args);
      run.child.kill('SIGKILL');
      await run.stop();
      t.not(await tablesLeft(ns, mode), '', 'kill -9 leaves the rules behind');
      run = await ns.portlab(args);
      const again = await ns.node<{ status: number }[]>(getsScript(['http://127.0.0.1:30002/']));
      t.is(again[0]!.status, 200, JSON.stringify(again));
      if (mode === 'nftables') t.is((await tablesLeft(ns, mode)).split('\n').length, 1, 'one table, not two');
      t.is(await run.stop(), 0);
      t.is(await tablesLeft(ns, mode), '');
    } finally {
      ns.close();
      await dir.cleanup();
    }
  });

  test(`${mode}: externalTrafficPolicy Local: an outside client reaches only this node's endpoint and keeps its address; none here drops`, async (t) => {
    const ns = await namespace(t, mode);
    if (!ns) return;
    const client = await ns.client();
    // Two backends of our own, on this node and on another.
    const backends = ns.run(process.execPath, ['--input-type=module', '-e', BACKENDS_SCRIPT], '', 60_000);
    const m = await tempManifest(LOCAL_MANIFEST);
    try {
      await waitFor(async () => (await ns.node<{ status?: number }[]>(getsScript(['http://127.250.0.1:5000/']))).some((r) => r.status === 200), 'the backends');
      const run = await ns.portlab(['-f', m.file, '--proxy-mode', mode, '--node-address', '10.99.0.1', '--node-name', 'node-1', '--quiet']);
      const outside = await client.node<{ status?: number; pod?: string; error?: string }[]>(getsScript(['http://10.99.0.1:30080/', 'http://10.99.0.1:30081/'], 1500));
      t.is(outside[0]!.status, 200);
      t.is(outside[0]!.pod, 'client 10.99.0.2', 'the pod sees the outside client\'s own address');
      t.is(outside[1]!.error, 'timeout', 'no local endpoint: DROP, the client waits');
      // From the node itself, traffic short-circuits to every endpoint, as kube-proxy's rules say.
      const local = await ns.node<{ status?: number }[]>(getsScript(['http://10.99.0.1:30081/']));
      t.is(local[0]!.status, 200);
      t.is(await run.stop(), 0);
    } finally {
      void backends;
      client.close();
      ns.close();
      await m.cleanup();
    }
  });
}

/** HOLD_SCRIPT opens one keep-alive connection to the metrics port, asks once, waits for "go" on stdin, asks again. */
function HOLD_SCRIPT(serviceIP: string): string {
  return `
import http from 'node:http';
import { once } from 'node:events';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const ask = () => new Promise((resolve) => http.get('http://${serviceIP}:8081/', { agent }, (res) => { res.resume(); res.on('end', () => resolve(String(res.statusCode))); }).on('error', (e) => resolve(e.code)));
const out = [await ask()];
process.stdout.write('asked\\n');
process.stdin.resume();
await once(process.stdin, 'data');
out.push(await ask());
process.stdout.write(JSON.stringify(out));
agent.destroy();
process.exit(0);
`;
}

/** collect gathers a child's stdout as it comes. */
function collect(child: import('node:child_process').ChildProcess): { text: string } {
  const out = { text: '' };
  child.stdout!.on('data', (d) => (out.text += d));
  return out;
}

const BACKENDS_SCRIPT = `
import http from 'node:http';
for (const ip of ['127.250.0.1', '127.250.0.2']) {
  http.createServer((req, res) => res.end(JSON.stringify({ pod: 'client ' + req.socket.remoteAddress }))).listen(5000, ip);
}
setTimeout(() => process.exit(0), 55000);
`;

const LOCAL_MANIFEST = ['local', 'remote']
  .map(
    (name, i) => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  ports: [{name: http, port: 80${i}, targetPort: 5000, nodePort: 3008${i}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http, port: 5000}]
endpoints: [{addresses: ["127.250.0.${i + 1}"], nodeName: ${i === 0 ? 'node-1' : 'node-2'}}]
`,
  )
  .join('---\n');


test('without CAP_NET_ADMIN a kernel mode fails at once, with exit 3 and how to run it, having started nothing', async (t) => {
  const ns = await namespace(t, 'nftables');
  if (!ns) return;
  try {
    for (const mode of MODES) {
      // Root without CAP_NET_ADMIN is refused as an ordinary user is; the namespace keeps the host's tables out of reach anyway.
      const r = await ns.run('setpriv', ['--bounding-set', '-net_admin', '--inh-caps', '-net_admin', process.execPath, ...NODE_FLAGS, CLI, 'up', '-f', SEED, '--proxy-mode', mode]);
      t.is(r.code, 3, r.stderr);
      t.regex(r.stderr, new RegExp(`--proxy-mode ${mode}: it needs CAP_NET_ADMIN \\(root\\)`));
      t.regex(r.stderr, /fix: Run it as root \(sudo portlab up …\), or in a private network namespace/);
    }
  } finally {
    ns.close();
  }
});

test('--port-offset is refused in a kernel mode, whose rules send packets to the declared ports', async (t) => {
  const r = await runCli(['up', '-f', SEED, '--proxy-mode', 'nftables', '--port-offset', '8000']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--port-offset is for --proxy-mode userspace/);
});

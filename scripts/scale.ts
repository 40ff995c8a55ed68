// scale.ts — 1,000 Services × 2 ports × 2 replicas with nodePorts: time to ready, RSS, and the cost of a one-Service resync.
// Run: npm run scale [-- --services N]. Loopback only; it opens ~8,000 listeners and closes them all at the end.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseOptions } from '../src/cli/options.js';
import { TrafficLog } from '../src/observe/log.js';
import { Portlab } from '../src/runtime.js';

const { values } = parseArgs({ options: { services: { type: 'string', default: '1000' }, json: { type: 'string' }, layout: { type: 'string', default: 'dir' } } });
// dir: one file per Service and its Deployment, as manifests are usually kept; file: all in one file.
const layout = values.layout === 'file' ? 'file' : 'dir';
const count = Number(values.services);
const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
const progress = (msg: string) => {
  if (tty) process.stderr.write(`\r\x1b[K${msg}`);
};

function app(i: number, changed: number): string {
  const port = i === changed ? 9090 : 8080;
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: app-${i}}
spec:
  replicas: 2
  selector: {matchLabels: {app: app-${i}}}
  template:
    metadata: {labels: {app: app-${i}}}
    spec:
      containers: [{name: c, image: x, ports: [{name: http, containerPort: 5000}, {name: metrics, containerPort: 6000}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc-${i}}
spec:
  type: NodePort
  selector: {app: app-${i}}
  ports:
    - {name: http, port: ${port}, targetPort: http, nodePort: ${30000 + 2 * i}}
    - {name: metrics, port: 8081, targetPort: metrics, nodePort: ${30001 + 2 * i}}`;
}

/** writeManifests writes the cluster; `changed` is the one Service whose http port moves to 9090. */
async function writeManifests(changed = -1): Promise<void> {
  if (layout === 'file') {
    await writeFile(path.join(dir, 'scale.yml'), `${Array.from({ length: count }, (_, i) => app(i, changed)).join('\n---\n')}\n`);
    return;
  }
  for (let i = 0; i < count; i++) {
    if (changed === -2 || i === 7) await writeFile(path.join(dir, `app-${String(i).padStart(4, '0')}.yml`), `${app(i, changed)}\n`);
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'portlab-scale-'));
await writeManifests(-2);
const options = parseOptions(['up', '-f', layout === 'file' ? path.join(dir, 'scale.yml') : dir, '--node-address', '127.3.0.1', '--service-cidr', '127.4.0.0/16', '--pod-cidr', '127.5.0.0/16', '--admin', 'off', '--quiet']);

progress(`starting ${count} Services…`);
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const { portlab, summary } = await Portlab.start(options, new TrafficLog('none'));
const readyMs = performance.now() - t0;
global.gc?.();
const rss = process.memoryUsage().rss;
progress(`ready: ${summary.opened} listeners, ${summary.podsStarted} pods in ${readyMs.toFixed(0)} ms; resyncing…`);

// One Service changes its http port: the sync should cost what the change costs, not what the cluster costs.
const resyncs: { syncMs: number; reloadMs: number; opened: number; closed: number }[] = [];
for (let round = 0; round < 5; round++) {
  await writeManifests(round % 2 === 0 ? 7 : -1);
  const r0 = performance.now();
  const result = await portlab.reload();
  const reloadMs = performance.now() - r0;
  if (!result.ok) throw result.error;
  resyncs.push({ syncMs: result.summary.durationMs, reloadMs, opened: result.summary.opened, closed: result.summary.closed });
  progress(`resync ${round + 1}/5: sync ${result.summary.durationMs.toFixed(1)} ms`);
}
await portlab.close(0);
await rm(dir, { recursive: true, force: true });
if (tty) process.stderr.write('\r\x1b[K');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const report = {
  layout,
  services: count,
  listeners: summary.opened,
  pods: summary.podsStarted,
  readyMs: Math.round(readyMs),
  rssMiB: Math.round(rss / 1048576),
  rssGrowthMiB: Math.round((rss - rssBefore) / 1048576),
  resyncSyncMsMedian: Number(median(resyncs.map((r) => r.syncMs)).toFixed(1)),
  resyncReloadMsMedian: Number(median(resyncs.map((r) => r.reloadMs)).toFixed(1)),
  resyncs,
};
console.log(`layout: ${layout === 'dir' ? 'one file per Service' : 'one file'}`);
console.log(`Services ${report.services}, listeners ${report.listeners} (+ ${report.pods} stand-in pods)`);
console.log(`time to ready          ${report.readyMs} ms        (target < 3000 ms)`);
console.log(`RSS                    ${report.rssMiB} MiB        (target < 300 MB)`);
console.log(`one-Service resync     ${report.resyncSyncMsMedian} ms sync, ${report.resyncReloadMsMedian} ms with re-reading the manifests (target < 50 ms for the sync)`);
if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2));

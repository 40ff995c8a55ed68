// modes.ts — `portlab bench --proxy-mode userspace,nftables,iptables`: the same Service through each mode, measured
// in one interleaved run, then each mode's control plane at 1, 1,000 and 10,000 Services. The kernel modes change
// rules, so the whole run happens in a network namespace of its own: the bench re-runs itself under `unshare -n`.
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { NODE_FLAGS } from '../cli/node-flags.js';
import type { Options, ProxyMode } from '../cli/options.js';
import { preflight } from '../kernel/plane.js';
import { systemTool } from '../kernel/tools.js';
import { measureControlPlane, type ScaleSizes } from './control-plane.js';
import { bulk, connect, histogram, httpThroughput, newConnections, perSecond, pingPong, stats, tally, throughputPool, turnOrder, type Addr, type Histogram, type Tally } from './measure.js';
import { buildModesReport, renderModesHtml, renderModesTable, type ModeTarget } from './modes-report.js';
import { ADDR, BENCH_PORTS, SERVICE } from './plan.js';
import { CLI, benchWorkspace, startChild } from './processes.js';
import type { Sample } from './report.js';

/** IN_NETNS marks the bench process that runs inside the namespace it made. */
const IN_NETNS = 'PORTLAB_BENCH_NETNS';

function sizes(quick: boolean): { data: { pings: number; connections: number; throughputMs: number; bulkBytes: number; limitMs: number; warm: number; slices: number }; scale: ScaleSizes } {
  return quick
    ? { data: { pings: 100, connections: 50, throughputMs: 250, bulkBytes: 4 << 20, limitMs: 5_000, warm: 50, slices: 2 }, scale: { counts: [1, 100], connections: 50, changes: 2, slices: 2, limitMs: 10_000 } }
    : { data: { pings: 5000, connections: 2000, throughputMs: 3000, bulkBytes: 256 << 20, limitMs: 30_000, warm: 500, slices: 10 }, scale: { counts: [1, 1000, 10_000], connections: 3000, changes: 6, slices: 10, limitMs: 60_000 } };
}

/** namespaceProblem says why this process cannot make a network namespace, or nothing when it can. */
function namespaceProblem(): string | undefined {
  for (const tool of ['unshare', 'ip']) if (!systemTool(tool)) return `${tool} is not installed`;
  const probe = spawnSync(systemTool('unshare')!, ['-n', 'true'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : `unshare -n failed (${probe.stderr.trim() || `exit ${probe.status}`}): the kernel modes need root, or CAP_SYS_ADMIN and CAP_NET_ADMIN`;
}

/** rerunInNamespace runs this same command in a new network namespace, and gives its exit code. */
function rerunInNamespace(): Promise<number> {
  const args = ['-n', process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)];
  const child = spawn(systemTool('unshare')!, args, { stdio: 'inherit', env: { ...process.env, [IN_NETNS]: '1' } });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}

interface Target extends ModeTarget {
  echo: Addr;
  web: Addr;
  sink: Addr;
}

const svcIP = (cidr: string) => cidr.replace(/0\/24$/, '1');

function targets(modes: ProxyMode[]): Target[] {
  const ports = (host: string, p: { echo: number; web: number; sink: number }) => ({ echo: { host, port: p.echo }, web: { host, port: p.web }, sink: { host, port: p.sink } });
  const servicePorts = { echo: SERVICE.echo.port, web: SERVICE.tcpWeb.port, sink: SERVICE.sink.port };
  const nodePorts = { echo: SERVICE.echo.nodePort, web: SERVICE.tcpWeb.nodePort, sink: SERVICE.sink.nodePort };
  const list: Target[] = [{ id: 'pod', mode: 'pod', layer: 'pod', label: 'pod (direct to backend)', ...ports(ADDR.backend, BENCH_PORTS) }];
  for (const mode of modes) {
    const a = mode === 'userspace' ? ADDR.viaService : ADDR[mode];
    list.push({ id: `${mode}-service`, mode, layer: 'service', label: `${mode}: service port`, ...ports(svcIP(a.serviceCidr), servicePorts) });
    list.push({ id: `${mode}-node`, mode, layer: 'node', label: `${mode}: nodePort${mode === 'userspace' ? ' (via service, 2 hops)' : ''}`, ...ports(a.node, nodePorts) });
  }
  return list;
}

export async function runModeBench(options: Options): Promise<number> {
  const notes: string[] = [];
  let modes = options.bench.modes;
  const kernelModes = modes.filter((m) => m !== 'userspace');
  if (kernelModes.length > 0 && process.env[IN_NETNS] !== '1') {
    const problem = namespaceProblem();
    if (!problem) return rerunInNamespace();
    notes.push(`skipped ${kernelModes.join(' and ')}: the bench runs the kernel modes in a network namespace of its own, and ${problem}`);
    modes = modes.filter((m) => m === 'userspace');
  }
  if (process.env[IN_NETNS] === '1') {
    const lo = spawnSync(systemTool('ip')!, ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
    if (lo.status !== 0) throw new Error(`could not bring up lo in the bench's network namespace: ${lo.stderr}`);
    for (const mode of kernelModes) {
      try {
        await preflight(mode as 'nftables' | 'iptables');
      } catch (e) {
        notes.push(`skipped ${mode}: ${(e as Error).message}`);
        modes = modes.filter((m) => m !== mode);
      }
    }
  }
  const size = sizes(options.bench.quick);
  const reps = options.bench.quick ? 1 : options.bench.reps;
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const progress = (msg: string) => {
    if (tty) process.stderr.write(`\r\x1b[K${msg}`);
  };
  const workspace = await benchWorkspace('portlab-bench-modes-');
  const { dir, manifest } = workspace;
  try {
    progress('starting the backend and one portlab per mode…');
    await startChild('backend', process.execPath, [new URL('./backend.js', import.meta.url).pathname, ADDR.backend]);
    const portlabs = [];
    for (const mode of modes) {
      const a = mode === 'userspace' ? ADDR.viaService : ADDR[mode];
      const args = [...NODE_FLAGS, CLI, 'up', '-f', manifest, '--log-format', 'json', '--proxy-mode', mode, '--node-address', a.node, '--service-cidr', a.serviceCidr, '--pod-cidr', a.podCidr, '--admin', 'off'];
      portlabs.push(await startChild(`portlab (${mode})`, process.execPath, args, { stdoutFile: path.join(dir, `portlab-${mode}.log`) }));
    }
    const list = targets(modes);

    progress('warming up…');
    for (const t of list) {
      const s = await connect(t.echo);
      await pingPong(s, size.data.warm, histogram(), performance.now() + size.data.limitMs);
      s.destroy();
    }

    const samples: Sample[] = [];
    const add = (t: Target, metric: string, rep: number, value: number) => samples.push({ target: t.id, metric, rep, value });
    const slices = size.data.slices;
    for (let rep = 0; rep < reps; rep++) {
      const total = 4 * slices;
      let step = 0;
      const tick = (what: string) => progress(`rep ${rep + 1}/${reps} · ${Math.round((100 * ++step) / total)}% · ${what}`);
      const turns = (slice: number) => turnOrder(list, rep, slice);

      // Round trips on an open connection: after the first packet, the kernel modes only look up conntrack.
      const sockets = new Map(await Promise.all(list.map(async (t) => [t, await connect(t.echo)] as const)));
      const rtt = new Map<Target, Histogram>(list.map((t) => [t, histogram()]));
      const deadline = performance.now() + size.data.limitMs * list.length;
      for (let i = 0; i < slices; i++) {
        tick('tcp ping-pong');
        for (const t of turns(i)) await pingPong(sockets.get(t)!, Math.ceil(size.data.pings / slices), rtt.get(t)!, deadline);
      }
      for (const s of sockets.values()) s.destroy();
      for (const [t, h] of rtt) add(t, 'tcp_rtt_p50_us', rep, stats(h).p50);

      // New connections: the first packet is where the rules are walked.
      const conn = new Map<Target, [Histogram, Histogram]>(list.map((t) => [t, [histogram(), histogram()]]));
      const connDeadline = performance.now() + size.data.limitMs * list.length;
      for (let i = 0; i < slices; i++) {
        tick('new connections');
        for (const t of turns(i)) await newConnections(t.echo, Math.ceil(size.data.connections / slices), ...conn.get(t)!, connDeadline);
      }
      for (const [t, [c, f]] of conn) {
        add(t, 'connect_p50_us', rep, stats(c).p50);
        add(t, 'first_byte_p50_us', rep, stats(f).p50);
      }

      // HTTP at L4 (keep-alive), 32 in flight.
      const pools = new Map(list.map((t) => [t, throughputPool(t.web, 32)] as const));
      const rps = new Map<Target, Tally>(list.map((t) => [t, tally()]));
      for (let i = 0; i < slices; i++) {
        tick('http req/s c=32');
        for (const t of turns(i)) await httpThroughput(pools.get(t)!, 32, size.data.throughputMs / slices, 2_000_000, rps.get(t)!);
      }
      await Promise.all([...pools.values()].map((p) => p.close()));
      for (const [t, r] of rps) {
        add(t, 'http_rps_c32', rep, perSecond(r));
        if (r.errors > 0) notes.push(`${t.label}: ${r.errors} failed requests in rep ${rep + 1}`);
      }

      // Bulk upload through one connection.
      const streams = new Map(await Promise.all(list.map(async (t) => [t, await connect(t.sink)] as const)));
      const mb = new Map<Target, Tally>(list.map((t) => [t, tally()]));
      for (let i = 0; i < slices; i++) {
        tick('bulk');
        for (const t of turns(i)) await bulk(streams.get(t)!, Math.ceil(size.data.bulkBytes / slices), size.data.limitMs * 4, mb.get(t)!);
      }
      for (const s of streams.values()) s.destroy();
      for (const [t, r] of mb) add(t, 'bulk_MBps', rep, perSecond(r) / 1e6);
    }
    // The control plane runs alone: the portlab processes above hold the same table and chains.
    await Promise.all(portlabs.map((p) => p.stop()));
    const scale = await measureControlPlane(modes, size.scale, dir, (what) => progress(what), notes);
    progress('');
    if (tty) process.stderr.write('\r\x1b[K');

    const report = buildModesReport({ targets: list, samples, reps, quick: options.bench.quick, scale, notes, inNamespace: process.env[IN_NETNS] === '1' });
    process.stdout.write(renderModesTable(report));
    if (options.bench.json) await writeFile(options.bench.json, JSON.stringify(report, null, 2));
    if (options.bench.html) await writeFile(options.bench.html, renderModesHtml(report));
    return 0;
  } finally {
    await workspace.close();
  }
}

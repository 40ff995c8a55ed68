// run.ts — `portlab bench`: every layer measured in one interleaved run, next to a bare Node pipe and, when installed,
// HAProxy and nginx. The load generator is this process; the backend, portlab and the baselines are children.
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { NODE_FLAGS } from '../cli/node-flags.js';
import type { Options } from '../cli/options.js';
import { bulk, connRate, connect, histogram, httpLatency, httpThroughput, latencyClient, perSecond, pingPong, stats, tally, throughputPool, turnOrder, type Addr, type Histogram, type Tally } from './measure.js';
import { ADDR, BENCH_PORTS, SERVICE } from './plan.js';
import { CLI, benchWorkspace, cpuAndPeakRss, cpuNanos, startChild, startHaproxy, startNginx } from './processes.js';
import { buildReport, renderHtml, renderTable, type Sample, type TargetInfo } from './report.js';

interface Target extends TargetInfo {
  echo?: Addr;
  web: Addr;
  sink?: Addr;
  /** server is the process that answers an L7 target (portlab, the baseline, or the backend), for its CPU per request. */
  server?: number;
}

/**
 * Sizes of each measurement, per target and repetition. Each is cut into `slices` that take turns across the targets,
 * so a noisy second on this machine lands on every target alike. Quick mode only proves that every measurement runs.
 */
function sizes(quick: boolean) {
  return quick
    ? { pings: 100, latency: 100, throughputMs: 250, bulkBytes: 4 << 20, connMs: 200, limitMs: 5_000, warm: 50, settleMs: 20, slices: 2 }
    : { pings: 5000, latency: 3000, throughputMs: 3000, bulkBytes: 256 << 20, connMs: 1500, limitMs: 30_000, warm: 500, settleMs: 300, slices: 10 };
}

const A = ADDR.viaService;
const B = ADDR.direct;
const svcIP = (cidr: string) => cidr.replace(/0\/24$/, '1');

/** Servers are the PIDs of the processes that answer the L7 targets. */
interface Servers {
  backend: number;
  portlab: number;
  direct: number;
  baselines: number;
}

function targets(haproxy: boolean, nginx: boolean, pid: Servers): Target[] {
  const at = (host: string, port: number): Addr => ({ host, port });
  const l4 = (id: string, label: string, host: string, p: { echo: number; web: number; sink: number }, kind: TargetInfo['kind']): Target => ({
    id,
    label,
    group: 'L4',
    kind,
    echo: at(host, p.echo),
    web: at(host, p.web),
    sink: at(host, p.sink),
  });
  const list: Target[] = [
    l4('l4-pod', 'pod (direct to backend)', ADDR.backend, BENCH_PORTS, 'layer'),
    l4('l4-service', 'portlab service port', svcIP(A.serviceCidr), { echo: SERVICE.echo.port, web: SERVICE.tcpWeb.port, sink: SERVICE.sink.port }, 'layer'),
    l4('l4-node', 'portlab nodePort via service', A.node, { echo: SERVICE.echo.nodePort, web: SERVICE.tcpWeb.nodePort, sink: SERVICE.sink.nodePort }, 'layer'),
    l4('l4-node-direct', 'portlab nodePort direct', B.node, { echo: SERVICE.echo.nodePort, web: SERVICE.tcpWeb.nodePort, sink: SERVICE.sink.nodePort }, 'layer'),
    l4('l4-pipe', 'bare Node pipe (baseline)', ADDR.pipe, BENCH_PORTS, 'baseline'),
  ];
  if (haproxy) list.push(l4('l4-haproxy', 'HAProxy tcp mode', ADDR.haproxy, BENCH_PORTS, 'baseline'));
  if (nginx) list.push(l4('l4-nginx', 'nginx stream', ADDR.nginx, BENCH_PORTS, 'baseline'));
  list.push(
    { id: 'l7-pod', label: 'pod (direct to backend)', group: 'L7', kind: 'layer', web: at(ADDR.backend, BENCH_PORTS.web), server: pid.backend },
    { id: 'l7-service', label: 'portlab service port (L7)', group: 'L7', kind: 'layer', web: at(svcIP(A.serviceCidr), SERVICE.http.port), server: pid.portlab },
    { id: 'l7-node', label: 'portlab nodePort via service (L7)', group: 'L7', kind: 'layer', web: at(A.node, SERVICE.http.nodePort), server: pid.portlab },
    { id: 'l7-node-direct', label: 'portlab nodePort direct (L7)', group: 'L7', kind: 'layer', web: at(B.node, SERVICE.http.nodePort), server: pid.direct },
    { id: 'l7-http-proxy', label: 'plain http-proxy, keep-alive (baseline)', group: 'L7', kind: 'baseline', web: at(ADDR.httpProxy, BENCH_PORTS.web), server: pid.baselines },
  );
  return list;
}

export async function runBench(options: Options): Promise<number> {
  if (options.bench.modes.some((m) => m !== 'userspace')) {
    const { runModeBench } = await import('./modes.js');
    return runModeBench(options);
  }
  const size = sizes(options.bench.quick);
  const reps = options.bench.quick ? 1 : options.bench.reps;
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const progress = (msg: string) => {
    if (tty) process.stderr.write(`\r\x1b[K${msg}`);
  };
  const notes: string[] = [];
  const workspace = await benchWorkspace('portlab-bench-');
  const { dir, manifest } = workspace;
  try {
    progress('starting backend, portlab and baselines…');
    const backend = await startChild('backend', process.execPath, [new URL('./backend.js', import.meta.url).pathname, ADDR.backend]);
    const common = ['up', '-f', manifest, '--log-format', 'json'];
    // Each portlab writes its traffic log to a file, as `portlab up > traffic.log` would: logging stays on, and its
    // cost falls on portlab, not on this process.
    const logs = [path.join(dir, 'portlab.log'), path.join(dir, 'portlab-direct.log')] as const;
    const portlab = await startChild('portlab', process.execPath, [...NODE_FLAGS, CLI, ...common, '--node-address', A.node, '--service-cidr', A.serviceCidr, '--pod-cidr', A.podCidr, '--admin', A.admin], { stdoutFile: logs[0] });
    const direct = await startChild('portlab-direct', process.execPath, [...NODE_FLAGS, CLI, ...common, '--nodeport-hop', 'direct', '--node-address', B.node, '--service-cidr', B.serviceCidr, '--pod-cidr', B.podCidr, '--admin', 'off'], { stdoutFile: logs[1] });
    const baselines = await startChild('baselines', process.execPath, [new URL('./baselines.js', import.meta.url).pathname, ADDR.pipe, ADDR.httpProxy, ADDR.backend]);
    const haproxy = await startHaproxy().catch((e: Error) => `HAProxy failed to start: ${e.message}`);
    const nginx = await startNginx().catch((e: Error) => `nginx failed to start: ${e.message}`);
    if (typeof haproxy === 'string') notes.push(`skipped HAProxy: ${haproxy}`);
    if (typeof nginx === 'string') notes.push(`skipped nginx: ${nginx}`);
    const servers = { backend: backend.proc.pid!, portlab: portlab.proc.pid!, direct: direct.proc.pid!, baselines: baselines.proc.pid! };
    const list = targets(typeof haproxy !== 'string', typeof nginx !== 'string', servers);
    const cpuBefore = cpuAndPeakRss(portlab.proc.pid!);

    // Warm-up: JIT, agents' keep-alive pools and the kernel's caches, on every target.
    progress('warming up…');
    for (const t of list) {
      const warm = { deadline: performance.now() + size.limitMs, h: histogram() };
      if (t.echo) {
        const s = await connect(t.echo);
        await pingPong(s, size.warm, warm.h, warm.deadline);
        s.destroy();
      }
      const client = latencyClient(t.web);
      await httpLatency(client, size.warm, warm.h, warm.deadline);
      await client.close();
    }

    const samples: Sample[] = [];
    const add = (t: Target, metric: string, rep: number, value: number) => samples.push({ target: t.id, metric, rep, value });
    const slices = size.slices;
    for (let rep = 0; rep < reps; rep++) {
      const echoTargets = list.filter((t) => t.echo);
      const sinkTargets = list.filter((t) => t.sink);
      const turns = (targets: Target[], slice: number) => turnOrder(targets, rep, slice);
      const total = 5 * slices;
      let step = 0;
      const tick = (what: string) => progress(`rep ${rep + 1}/${reps} · ${Math.round((100 * ++step) / total)}% · ${what}`);
      // settle lets the previous measurement's clean-up (closing sockets, freeing buffers) finish before the next one.
      const settle = () => new Promise((r) => setTimeout(r, size.settleMs));

      // TCP round trips: one open connection per target; slices of ping-pongs take turns.
      const sockets = new Map(await Promise.all(echoTargets.map(async (t) => [t, await connect(t.echo!)] as const)));
      const rtt = new Map<Target, Histogram>(echoTargets.map((t) => [t, histogram()]));
      const deadline = performance.now() + size.limitMs * echoTargets.length;
      for (let i = 0; i < slices; i++) {
        tick('tcp ping-pong');
        for (const t of turns(echoTargets, i)) await pingPong(sockets.get(t)!, Math.ceil(size.pings / slices), rtt.get(t)!, deadline);
      }
      for (const s of sockets.values()) s.destroy();
      for (const [t, h] of rtt) {
        const r = stats(h);
        add(t, 'tcp_rtt_p50_us', rep, r.p50);
        add(t, 'tcp_rtt_p90_us', rep, r.p90);
        add(t, 'tcp_rtt_p99_us', rep, r.p99);
        add(t, 'tcp_rtt_max_us', rep, r.max);
      }
      await settle();

      // HTTP keep-alive latency at concurrency 1: one client per target, slices take turns.
      const clients = new Map(list.map((t) => [t, latencyClient(t.web)] as const));
      const lat = new Map<Target, Histogram>(list.map((t) => [t, histogram()]));
      const latDeadline = performance.now() + size.limitMs * list.length;
      for (let i = 0; i < slices; i++) {
        tick('http latency c=1');
        for (const t of turns(list, i)) await httpLatency(clients.get(t)!, Math.ceil(size.latency / slices), lat.get(t)!, latDeadline);
      }
      await Promise.all([...clients.values()].map((c) => c.close()));
      for (const [t, h] of lat) {
        const r = stats(h);
        add(t, 'http_p50_us', rep, r.p50);
        add(t, 'http_p99_us', rep, r.p99);
      }
      await settle();

      // Requests/s at concurrency 32: one pool per target, time slices take turns. The CPU the answering process uses
      // in its own slices gives an L7 target's CPU per request: steadier than req/s on a machine whose two cores the
      // load generator, the backend and the proxy share.
      const pools = new Map(list.map((t) => [t, throughputPool(t.web, 32)] as const));
      const rps = new Map<Target, Tally>(list.map((t) => [t, tally()]));
      const cpuNs = new Map<Target, number>();
      for (let i = 0; i < slices; i++) {
        tick('http req/s c=32');
        for (const t of turns(list, i)) {
          const before = t.server === undefined ? 0 : cpuNanos(t.server);
          await httpThroughput(pools.get(t)!, 32, size.throughputMs / slices, 2_000_000, rps.get(t)!);
          if (t.server !== undefined) cpuNs.set(t, (cpuNs.get(t) ?? 0) + cpuNanos(t.server) - before);
        }
      }
      await Promise.all([...pools.values()].map((p) => p.close()));
      for (const [t, r] of rps) {
        add(t, 'http_rps_c32', rep, perSecond(r));
        const ns = cpuNs.get(t);
        if (ns !== undefined && r.done > 0) add(t, 'cpu_us_per_req', rep, ns / 1000 / r.done);
        if (r.errors > 0) notes.push(`${t.label}: ${r.errors} failed requests in rep ${rep + 1}`);
      }
      await settle();

      // Bulk: one connection per target; uploads of bulkBytes / slices take turns on them.
      const streams = new Map(await Promise.all(sinkTargets.map(async (t) => [t, await connect(t.sink!)] as const)));
      const mb = new Map<Target, Tally>(sinkTargets.map((t) => [t, tally()]));
      for (let i = 0; i < slices; i++) {
        tick('bulk');
        for (const t of turns(sinkTargets, i)) {
          await bulk(streams.get(t)!, Math.ceil(size.bulkBytes / slices), size.limitMs * 4, mb.get(t)!);
          await new Promise((r) => setTimeout(r, size.settleMs / 3));
        }
      }
      for (const s of streams.values()) s.destroy();
      for (const [t, r] of mb) add(t, 'bulk_MBps', rep, perSecond(r) / 1e6);

      // New connections per second, in time slices.
      const conns = new Map<Target, Tally>(echoTargets.map((t) => [t, tally()]));
      for (let i = 0; i < slices; i++) {
        tick('new connections/s');
        for (const t of turns(echoTargets, i)) await connRate(t.echo!, 8, size.connMs / slices, 200_000, conns.get(t)!);
      }
      for (const [t, r] of conns) add(t, 'conn_per_s', rep, perSecond(r));
      await settle();
    }
    const cpuAfter = cpuAndPeakRss(portlab.proc.pid!);
    const logged = logs.map((f) => (statSync(f).size / 1048576).toFixed(1));
    notes.push(`portlab logged every connection and request as JSON lines to a file, as \`portlab up > traffic.log\` does: ${logged[0]} MiB and ${logged[1]} MiB`);
    progress('');
    if (tty) process.stderr.write('\r\x1b[K');

    const report = buildReport({
      targets: list,
      samples,
      reps,
      quick: options.bench.quick,
      sizes: size,
      portlab: { cpuSeconds: cpuAfter.cpuSeconds - cpuBefore.cpuSeconds, peakRssMiB: cpuAfter.peakRssMiB },
      notes,
    });
    process.stdout.write(renderTable(report, options.bench.check));
    if (options.bench.json) await writeFile(options.bench.json, JSON.stringify(report, null, 2));
    if (options.bench.html) await writeFile(options.bench.html, renderHtml(report));
    const missed = report.ratios.filter((x) => !x.met);
    if (options.bench.check && missed.length > 0) {
      process.stderr.write(`bench --check: ${missed.length} target(s) missed: ${missed.map((x) => `${x.name} ${x.value.toFixed(3)} (target ${x.target})`).join('; ')}\n`);
      return 1;
    }
    return 0;
  } finally {
    await workspace.close();
  }
}

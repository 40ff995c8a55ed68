// control-plane.ts — the benchmark's scale runs: how long each mode takes to apply N Services and one changed Service,
// and what N Services cost the first packet of a new connection. One mode at a time, so no mode's rules lie in
// another's path. Runs in the bench's own network namespace.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { NODE_FLAGS } from '../cli/node-flags.js';
import { parseOptions, type ProxyMode } from '../cli/options.js';
import { IptablesPlane } from '../kernel/iptables-plane.js';
import { NftablesPlane } from '../kernel/nftables-plane.js';
import { MASQUERADE_MARK, type KernelPlane } from '../kernel/plane.js';
import { systemTool } from '../kernel/tools.js';
import { planFromFiles } from '../model/plan.js';
import type { DesiredState } from '../model/state.js';
import { nodeFor } from '../rules/ruleset.js';
import { histogram, newConnections, stats, turnOrder, type Addr, type Histogram } from './measure.js';
import { ADDR, BENCH_PORTS, SERVICE, scaleManifests } from './plan.js';
import { CLI, startChild } from './processes.js';

export interface ScalePoint {
  mode: ProxyMode;
  services: number;
  /** applyMs: the first, full apply (kernel), or the time `portlab up` took to open every listener (userspace). */
  applyMs: number;
  /** changeMs: the median of `changes` applies of one changed Service (a partial sync; userspace: a reload). */
  changeMs: number;
  /** connectP50Us and firstByteP50Us: new connections to the last Service in kube-proxy's order. */
  connectP50Us: number;
  firstByteP50Us: number;
  /** podConnectP50Us: new connections straight to the pod, with the mode's rules in place: they cross the nat table too. */
  podConnectP50Us: number;
  /** baselineConnectP50Us: the same, with nothing applied (measured before and after, pooled). */
  baselineConnectP50Us: number;
  baselineFirstByteP50Us: number;
  /** connectAddedUs and firstByteAddedUs: the last Service over the baseline, what the mode adds to a new connection. */
  connectAddedUs: number;
  firstByteAddedUs: number;
}

export interface ScaleSizes {
  counts: number[];
  connections: number;
  /** changes is even: the Service is changed and changed back, so the connections go to the plain state. */
  changes: number;
  slices: number;
  limitMs: number;
}

const S = ADDR.scale;
const POD: Addr = { host: ADDR.backend, port: BENCH_PORTS.echo };
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)]!;

/** Manifests are the two files of one count, and the plans of their two versions (as written, and changed). */
interface Manifests {
  dir: string;
  count: number;
  plain: DesiredState;
  changed: DesiredState;
}

const planArgs = (dir: string) => ['-f', dir, '--node-address', S.node, '--service-cidr', S.serviceCidr, '--pod-cidr', S.podCidr, '--standins', 'never'];

function write(dir: string, count: number, extra: boolean): void {
  const files = scaleManifests(count, extra);
  writeFileSync(path.join(dir, 'changed.yml'), files.changed);
  if (files.rest) writeFileSync(path.join(dir, 'services.yml'), files.rest);
}

async function prepare(root: string, count: number): Promise<Manifests> {
  const dir = path.join(root, `scale-${count}`);
  mkdirSync(dir, { recursive: true });
  write(dir, count, true);
  const changed = await planFromFiles(parseOptions(['routes', ...planArgs(dir)]));
  write(dir, count, false);
  const plain = await planFromFiles(parseOptions(['routes', ...planArgs(dir)]));
  return { dir, count, plain, changed };
}

/** lastService is where the last Service in kube-proxy's order answers: the one iptables matches after all others. */
function lastService(state: DesiredState): Addr {
  const last = [...state.services].sort((a, b) => a.name.localeCompare(b.name)).at(-1)!;
  return { host: last.clusterIP!, port: SERVICE.echo.port };
}

/** Probe is one target's new-connection timings: to the end of the handshake, and to the first byte's echo. */
interface Probe {
  connect: Histogram;
  firstByte: Histogram;
}
const probe = (): Probe => ({ connect: histogram(), firstByte: histogram() });

/** baseline times new connections to the pod with nothing of the mode in place; called before and after, into one probe. */
async function baseline(into: Probe, size: ScaleSizes): Promise<void> {
  await newConnections(POD, Math.ceil(size.connections / 2), into.connect, into.firstByte, performance.now() + size.limitMs);
}

/** measure times new connections to the last Service and to the pod, in turns, with the mode's rules in place. */
async function measure(target: Addr, size: ScaleSizes): Promise<{ svc: Probe; pod: Probe }> {
  const h = { svc: probe(), pod: probe() };
  const deadline = performance.now() + size.limitMs;
  const per = Math.ceil(size.connections / size.slices);
  for (let i = 0; i < size.slices; i++) {
    for (const which of turnOrder(['svc', 'pod'] as const, 0, i)) await newConnections(which === 'svc' ? target : POD, per, h[which].connect, h[which].firstByte, deadline);
  }
  return h;
}

function point(mode: ProxyMode, services: number, applyMs: number, changes: number[], base: Probe, m: { svc: Probe; pod: Probe }): ScalePoint {
  const p50 = (h: Histogram) => stats(h).p50;
  const b = { connect: p50(base.connect), firstByte: p50(base.firstByte) };
  return {
    mode,
    services,
    applyMs,
    changeMs: median(changes),
    connectP50Us: p50(m.svc.connect),
    firstByteP50Us: p50(m.svc.firstByte),
    podConnectP50Us: p50(m.pod.connect),
    baselineConnectP50Us: b.connect,
    baselineFirstByteP50Us: b.firstByte,
    connectAddedUs: p50(m.svc.connect) - b.connect,
    firstByteAddedUs: p50(m.svc.firstByte) - b.firstByte,
  };
}

/** kernelPoint applies N Services with the same plane `portlab up` uses, changes one, and measures, then removes all. */
async function kernelPoint(mode: 'nftables' | 'iptables', m: Manifests, size: ScaleSizes): Promise<ScalePoint> {
  const plane: KernelPlane = mode === 'nftables' ? new NftablesPlane(systemTool('nft')!) : new IptablesPlane(systemTool('iptables-restore')!, systemTool('iptables')!);
  const node = { ...nodeFor(m.plain, { nodeAddress: S.node, podCidr: S.podCidr, serviceCidr: S.serviceCidr }), masqueradeMark: MASQUERADE_MARK };
  const base = probe();
  await baseline(base, size);
  try {
    const applied = await plane.apply(m.plain, node);
    const changes: number[] = [];
    for (let i = 0; i < size.changes; i++) changes.push((await plane.apply(i % 2 === 0 ? m.changed : m.plain, node)).durationMs);
    const measured = await measure(lastService(m.plain), size);
    await plane.close();
    await baseline(base, size);
    return point(mode, m.count, applied.durationMs, changes, base, measured);
  } finally {
    await plane.close();
  }
}

/**
 * userspacePoint runs `portlab up --watch` on the N Services as a user would, reads its own sync and reload times, and
 * measures through its listeners. Two listeners per Service: the fd limit is raised for it when root may.
 */
async function userspacePoint(m: Manifests, size: ScaleSizes, logDir: string): Promise<ScalePoint | string> {
  const log = path.join(logDir, `scale-userspace-${m.count}.log`);
  const node = [...NODE_FLAGS, CLI, 'up', ...planArgs(m.dir), '--watch', '-q', '--admin', 'off'];
  // A listener per Service port, and room for connections: portlab raises its soft limit to the hard one itself;
  // past the hard limit, only a process with CAP_SYS_RESOURCE may go.
  const nofile = m.count * 2 + 4096;
  const hard = hardFdLimit();
  let [cmd, args] = [process.execPath, node];
  if (nofile > hard) {
    const prlimit = systemTool('prlimit');
    const allowed = prlimit && spawnSync(prlimit, [`--nofile=${nofile}:${nofile}`, 'true']).status === 0;
    if (!allowed) return `userspace at ${m.count.toLocaleString('en-US')} Services skipped: its ${(m.count * 2).toLocaleString('en-US')} listeners and their connections need about ${nofile.toLocaleString('en-US')} descriptors, over this machine's hard limit of ${hard.toLocaleString('en-US')} (raising it needs CAP_SYS_RESOURCE)`;
    [cmd, args] = [prlimit, [`--nofile=${nofile}:${nofile}`, process.execPath, ...node]];
  }
  const base = probe();
  await baseline(base, size);
  const child = await startChild(`portlab (${m.count} Services)`, cmd, args, { stdoutFile: log, timeoutMs: 120_000 });
  try {
    const up = /listeners and \d+ stand-in pod\(s\) up in ([\d.]+) ms/.exec(readFileSync(log, 'utf8'));
    if (!up) throw new Error(`portlab did not say how long its sync took:\n${readFileSync(log, 'utf8').slice(0, 2000)}`);
    const changes: number[] = [];
    for (let i = 0; i < size.changes; i++) {
      const before = readFileSync(log, 'utf8').split('reload: ').length;
      write(m.dir, m.count, i % 2 === 0);
      const deadline = performance.now() + 120_000;
      let text = readFileSync(log, 'utf8');
      while (text.split('reload: ').length === before) {
        if (performance.now() > deadline || child.proc.exitCode !== null) throw new Error(`portlab did not reload:\n${text.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
        text = readFileSync(log, 'utf8');
      }
      const reloads = [...text.matchAll(/reload: .* in ([\d.]+) ms/g)];
      changes.push(Number(reloads.at(-1)![1]));
    }
    const measured = await measure(lastService(m.plain), size);
    await child.stop();
    await baseline(base, size);
    return point('userspace', m.count, Number(up[1]), changes, base, measured);
  } finally {
    await child.stop();
  }
}

/** hardFdLimit is this process's hard limit on open files, which its children inherit. */
function hardFdLimit(): number {
  const m = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

/** measureControlPlane runs every mode at every count, smallest first, and reports progress through `tick`. */
export async function measureControlPlane(modes: ProxyMode[], size: ScaleSizes, root: string, tick: (what: string) => void, notes: string[]): Promise<ScalePoint[]> {
  const points: ScalePoint[] = [];
  // The first connections of a process are slow (JIT, caches): they go before any baseline is taken.
  await baseline(probe(), size);
  for (const count of size.counts) {
    tick(`control plane: planning ${count.toLocaleString('en-US')} Services`);
    const m = await prepare(root, count);
    for (const mode of modes) {
      tick(`control plane: ${mode}, ${count.toLocaleString('en-US')} Services`);
      const point = mode === 'userspace' ? await userspacePoint(m, size, root) : await kernelPoint(mode, m, size);
      if (typeof point === 'string') notes.push(point);
      else points.push(point);
    }
  }
  return points;
}

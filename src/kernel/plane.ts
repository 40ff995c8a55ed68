// plane.ts — the kernel data planes: kube-proxy's rules applied to the kernel, in portlab's own table, with the
// checks that say what is missing before anything is touched.
import { spawn } from 'node:child_process';
import { PortlabError } from '../errors.js';
import { servicePortKey, type DesiredState } from '../model/state.js';
import type { ProxyNode, ServicePortInfo } from '../rules/view.js';
import { systemTool } from './tools.js';

export type KernelMode = 'nftables' | 'iptables';

/** KernelPlane applies the desired state as kernel rules. Every change goes through apply; close removes them all. */
export interface KernelPlane {
  readonly mode: KernelMode;
  /** apply makes the kernel's rules match the state: the first call replaces whatever a previous run left. */
  apply(state: DesiredState, node: ProxyNode): Promise<{ durationMs: number; changed: number }>;
  /** counters reads the rules' own counters for each Service port's addresses; empty before the first apply. */
  counters(): Promise<RuleCounter[]>;
  /** close removes every rule, chain and table portlab added. */
  close(): Promise<void>;
}

/**
 * RuleCounter is what the kernel counted where a Service port's packets were dispatched: the service map element or
 * KUBE-SERVICES jump (verdict dnat), or the no-endpoints reject or drop. These rules see the first packet of each
 * connection (the nat hooks, and `ct state new` in the filter chains), so packets count connections and UDP flows.
 */
export interface RuleCounter {
  servicePort: string;
  layer: 'node' | 'service' | 'loadbalancer';
  verdict: 'dnat' | 'reject' | 'drop';
  packets: number;
  bytes: number;
}

/** CounterTargets names the Service port and layer behind each destination the rules match on. */
export interface CounterTargets {
  /** byAddress is keyed "tcp 127.10.0.1:80"; byNodePort "tcp 30000". */
  byAddress: Map<string, Pick<RuleCounter, 'servicePort' | 'layer'>>;
  byNodePort: Map<string, Pick<RuleCounter, 'servicePort' | 'layer'>>;
}

export function counterTargets(view: ServicePortInfo[]): CounterTargets {
  const targets: CounterTargets = { byAddress: new Map(), byNodePort: new Map() };
  for (const sp of view) {
    const servicePort = servicePortKey({ namespace: sp.spn.namespace, name: sp.spn.service }, { name: sp.spn.port, port: sp.port, protocol: sp.protocol.toUpperCase() });
    targets.byAddress.set(`${sp.protocol} ${sp.clusterIP}:${sp.port}`, { servicePort, layer: 'service' });
    for (const ip of sp.externalIPs) targets.byAddress.set(`${sp.protocol} ${ip}:${sp.port}`, { servicePort, layer: 'service' });
    for (const ip of sp.loadBalancerVIPs) targets.byAddress.set(`${sp.protocol} ${ip}:${sp.port}`, { servicePort, layer: 'loadbalancer' });
    if (sp.nodePort !== 0) targets.byNodePort.set(`${sp.protocol} ${sp.nodePort}`, { servicePort, layer: 'node' });
  }
  return targets;
}

/** TABLE is portlab's own table (nftables) and chain prefix (iptables): never kube-proxy's. */
export const TABLE = 'portlab';
export const CHAIN_PREFIX = 'PORTLAB-';
/** MASQUERADE_MARK is portlab's own mark bit, so a real kube-proxy on the host (0x4000) is not confused by it. */
export const MASQUERADE_MARK = '0x8000';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** run runs a system tool with input on stdin, bounded in time. */
export function run(tool: string, args: string[], input = '', timeoutMs = 30_000, cwd?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(tool, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: String(err) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * applyTimeoutMs bounds one transaction of `lines` commands. The kernel's time grows faster than the size: one nft
 * transaction of 10,000 Services (190,000 commands) takes minutes, as kube-proxy's does (kubernetes#139513).
 */
export function applyTimeoutMs(lines: number): number {
  return Math.max(60_000, lines * 5);
}

/** why is what a failed rule tool said: its first lines, or that it did not finish in time. */
export function why(result: RunResult, timeoutMs: number): string {
  if (result.code === null && !result.stderr.trim()) return `it did not finish within ${Math.round(timeoutMs / 1000)} s`;
  return result.stderr.trim().split('\n').slice(0, 3).join(' / ');
}

export function kernelError(message: string, fix: string, code: 'PORTLAB_KERNEL_UNAVAILABLE' | 'PORTLAB_KERNEL_FAILED' = 'PORTLAB_KERNEL_UNAVAILABLE'): PortlabError {
  return new PortlabError(code, message, { fix });
}

const HOW_TO_RUN = 'Run it as root (sudo portlab up …), or in a private network namespace where you are root: sudo unshare -n sh -c "ip link set lo up && portlab up …".';

/**
 * preflight finds the tools and checks that this process may change the kernel's rules, before anything is started.
 * It returns the tool paths; conntrack is optional (without it, kernel flows are not logged).
 */
export async function preflight(mode: KernelMode): Promise<{ tool: string; helper?: string; conntrack?: string }> {
  const [name, pkg] = mode === 'nftables' ? ['nft', 'nftables'] : ['iptables-restore', 'iptables'];
  const tool = systemTool(name);
  if (!tool) throw kernelError(`--proxy-mode ${mode} needs the ${name} command, which is not installed`, `Install it (apt-get install ${pkg}), or use --proxy-mode userspace.`);
  const helper = mode === 'iptables' ? systemTool('iptables') : undefined;
  if (mode === 'iptables' && !helper) throw kernelError('--proxy-mode iptables needs the iptables command, which is not installed', 'Install it (apt-get install iptables), or use --proxy-mode userspace.');
  // A read of the ruleset needs CAP_NET_ADMIN, as any change does: try one.
  const probe = mode === 'nftables' ? await run(tool, ['list', 'tables']) : await run(helper!, ['-w', '5', '-t', 'nat', '-S', 'OUTPUT']);
  if (probe.code !== 0) {
    const why = /permission denied|not permitted/i.test(probe.stderr) ? 'it needs CAP_NET_ADMIN (root) to change the kernel\'s rules' : `${name} failed: ${probe.stderr.trim().split('\n')[0] ?? ''}`;
    throw kernelError(`--proxy-mode ${mode}: ${why}`, HOW_TO_RUN);
  }
  return { tool, helper, conntrack: systemTool('conntrack') };
}

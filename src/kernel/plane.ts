// plane.ts — the kernel data planes: kube-proxy's rules applied to the kernel, in portlab's own table, with the
// checks that say what is missing before anything is touched.
import { spawn } from 'node:child_process';
import { PortlabError } from '../errors.js';
import type { DesiredState } from '../model/state.js';
import type { ProxyNode } from '../rules/view.js';
import { systemTool } from './tools.js';

export type KernelMode = 'nftables' | 'iptables';

/** KernelPlane applies the desired state as kernel rules. Every change goes through apply; close removes them all. */
export interface KernelPlane {
  readonly mode: KernelMode;
  /** apply makes the kernel's rules match the state: the first call replaces whatever a previous run left. */
  apply(state: DesiredState, node: ProxyNode): Promise<{ durationMs: number; changed: number }>;
  /** close removes every rule, chain and table portlab added. */
  close(): Promise<void>;
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
export function run(tool: string, args: string[], input = '', timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
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

// rules.ts — `portlab rules` and `portlab trace`: the same plan `up` runs, written as kube-proxy's kernel rules.
import { planFromFiles } from '../model/plan.js';
import { nodeFor, ruleset } from '../rules/ruleset.js';
import { traceIptables, traceNftables, type TraceResult } from '../rules/trace.js';
import type { ProxyNode } from '../rules/view.js';
import type { Options } from './options.js';

export async function rulesCommand(options: Options, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const state = await planFromFiles(options);
  for (const note of state.notes) err(`note: ${note}`);
  for (const w of state.warnings) err(`warning: ${w}`);
  const node = nodeFor(state, options);
  out(ruleset(state, node, options.proxyMode as 'nftables' | 'iptables').trimEnd());
  return 0;
}

export async function traceCommand(options: Options, out: (line: string) => void): Promise<number> {
  const trace = options.trace!;
  const state = await planFromFiles(options);
  const node = nodeFor(state, options);
  const mode = options.proxyMode as 'nftables' | 'iptables';
  const rules = ruleset(state, node, mode);
  const packet = { source: trace.from, destination: trace.to, port: trace.port, protocol: trace.protocol };
  const result = (mode === 'nftables' ? traceNftables : traceIptables)(rules, packet, [node.ip]);
  if (options.output === 'json') {
    out(JSON.stringify(result, null, 2));
    return 0;
  }
  for (const line of traceText(result, packet, node, mode)) out(line);
  return 0;
}

/** traceText is the walk for people: hook by hook, each matching rule and what it did, then the outcome. */
export function traceText(result: TraceResult, packet: { source: string; destination: string; port: number; protocol: string }, node: ProxyNode, mode: string): string[] {
  const from = packet.source === node.ip || packet.source.startsWith('127.') ? 'this node' : 'outside the node';
  const lines = [`${packet.protocol.toUpperCase()} ${packet.source} → ${packet.destination}:${packet.port}, a new connection from ${from}, through kube-proxy's ${mode} rules on ${node.name} (${node.ip})`];
  let hook = '';
  for (const step of result.path) {
    if (step.hook && step.hook !== hook) {
      hook = step.hook;
      lines.push(`  [${hook}]`);
    }
    lines.push(`    ${step.chain}${step.rule ? `: ${step.rule}` : ''}`, `        → ${step.effect}`);
  }
  if (result.path.length === 0) lines.push('    no rule matched');
  const outcome =
    result.output === 'REJECT'
      ? 'REJECT: the client is refused at once'
      : result.output === 'DROP'
        ? 'DROP: the packet is discarded and the client waits until it times out'
        : result.output === ''
          ? 'not translated: the packet goes on to its own destination'
          : `DNAT to ${result.output.split(', ').join(' or ')}${result.output.includes(',') ? ' (one per connection, at random)' : ''}`;
  lines.push(`result: ${outcome}`, `masquerade: ${result.masquerade ? 'yes: the source becomes the node address as the packet leaves' : 'no: the endpoint sees the client address'}`);
  return lines;
}

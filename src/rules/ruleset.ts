// ruleset.ts — the desired state as kube-proxy's rules on one node: the node, the whole ruleset, one Service port's part.
import type { DesiredState } from '../model/state.js';
import { iptablesRestore } from './iptables.js';
import { nftablesRuleset, nftablesServicePort } from './nftables.js';
import { findServicePort, proxyNode, proxyView, type ProxyNode } from './view.js';

export interface NodeFlags {
  nodeName?: string;
  nodeAddress: string;
  podCidr: string;
  serviceCidr: string;
}

/** nodeFor is the node the rules are for: one of portlab's nodes by name, or a node of that name at --node-address. */
export function nodeFor(state: DesiredState, options: NodeFlags): ProxyNode {
  const known = options.nodeName ? state.nodes.find((n) => n.name === options.nodeName) : state.nodes[0];
  const name = options.nodeName ?? known!.name;
  const ip = known?.address ?? options.nodeAddress;
  return proxyNode(name, ip, options.podCidr, options.serviceCidr);
}

/** ruleset prints the rules of one kernel mode for the planned state. */
export function ruleset(state: DesiredState, node: ProxyNode, mode: 'nftables' | 'iptables'): string {
  const view = proxyView(state, node);
  return mode === 'nftables' ? nftablesRuleset(view, node) : iptablesRestore(view, node);
}

/** servicePortRules are one Service port's rules, for the dashboard's Service box: its chains and elements in nftables,
 * the restore input for that port alone in iptables. */
export function servicePortRules(state: DesiredState, node: ProxyNode, key: string, mode: 'nftables' | 'iptables'): string | undefined {
  const sp = findServicePort(state, node, key);
  if (!sp) return undefined;
  return mode === 'nftables' ? `${nftablesServicePort('ip kube-proxy', sp, node).join('\n')}\n` : iptablesRestore([sp], node);
}

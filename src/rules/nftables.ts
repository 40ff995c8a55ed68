// nftables.ts — the `nft -f` transaction kube-proxy's nftables proxier (pkg/proxy/nftables/proxier.go) writes for a node.
import { contains, normalizePrefix } from './ip.js';
import { nftEndpointBase, nftServiceBase } from './names.js';
import { planServicePort, type EndpointInfo, type ProxyNode, type ServicePortInfo } from './view.js';

export interface NftablesOptions {
  /** table is kube-proxy's "kube-proxy"; portlab's kernel mode writes the same rules into its own "portlab". */
  table: string;
  /** masquerade is the statement for marked packets: kube-proxy's, or an SNAT to the node where every hop is on lo. */
  masquerade?: string;
}

const MASQ = 'mark-for-masquerade';

/** nftablesBase is setupNFTables(): the table, its sets and maps, base chains, and the rules that never change. */
export function nftablesBase(t: string, node: ProxyNode, masquerade = 'masquerade fully-random'): string[] {
  return [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    '',
    `add set ${t} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add set ${t} nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }`,
    `add map ${t} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
    `add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add map ${t} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${t} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    '',
    `add chain ${t} cluster-ips-check`,
    `add chain ${t} filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }`,
    `add chain ${t} filter-output-pre-dnat { type filter hook output priority -110 ; }`,
    `add chain ${t} filter-forward { type filter hook forward priority 0 ; }`,
    `add chain ${t} filter-input { type filter hook input priority 0 ; }`,
    `add chain ${t} filter-output { type filter hook output priority 0 ; }`,
    `add chain ${t} firewall-check`,
    `add chain ${t} ${MASQ}`,
    `add chain ${t} masquerading`,
    `add chain ${t} nat-output { type nat hook output priority -100 ; }`,
    `add chain ${t} nat-postrouting { type nat hook postrouting priority 100 ; }`,
    `add chain ${t} nat-prerouting { type nat hook prerouting priority -100 ; }`,
    `add chain ${t} nodeport-endpoints-check`,
    `add chain ${t} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `add chain ${t} services`,
    `add chain ${t} service-endpoints-check`,
    '',
    `add rule ${t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
    `add rule ${t} cluster-ips-check ip daddr { ${node.serviceCidrs.join(' , ')} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    `add rule ${t} filter-prerouting-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-forward ct state new jump service-endpoints-check`,
    `add rule ${t} filter-forward ct state new jump cluster-ips-check`,
    `add rule ${t} filter-input ct state new jump nodeport-endpoints-check`,
    `add rule ${t} filter-input ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output ct state new jump service-endpoints-check`,
    `add rule ${t} filter-output-pre-dnat ct state new jump firewall-check`,
    `add rule ${t} filter-output ct state new jump cluster-ips-check`,
    `add rule ${t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add rule ${t} ${MASQ} mark set mark or ${node.masqueradeMark}`,
    `add rule ${t} masquerading mark and ${node.masqueradeMark} == 0 return`,
    `add rule ${t} masquerading mark set mark xor ${node.masqueradeMark}`,
    `add rule ${t} masquerading ${masquerade}`,
    `add rule ${t} nat-output jump services`,
    `add rule ${t} nat-postrouting jump masquerading`,
    `add rule ${t} nat-prerouting jump services`,
    `add rule ${t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add rule ${t} reject-chain reject`,
    `add rule ${t} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`,
    `add rule ${t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
    '',
    `add element ${t} nodeport-ips { ${node.ip} }`,
  ];
}

/** ServicePortChains names the chains of one Service port; `routes` and the dashboard link to them. */
export interface NftServicePortChains {
  service: string;
  local: string;
  external: string;
  firewall: string;
  endpoint(ep: EndpointInfo): string;
  affinity(ep: EndpointInfo): string;
}

export function nftChains(sp: ServicePortInfo): NftServicePortChains {
  const base = nftServiceBase(sp.spn, sp.protocol);
  return {
    service: `service-${base}`,
    local: `local-${base}`,
    external: `external-${base}`,
    firewall: `firewall-${base}`,
    endpoint: (ep) => `endpoint-${nftEndpointBase(sp.spn, sp.protocol, ep.ip, ep.port)}`,
    affinity: (ep) => `affinity-${nftEndpointBase(sp.spn, sp.protocol, ep.ip, ep.port)}`,
  };
}

/** nftablesServicePort is one iteration of syncProxyRules' loop: the sets, chains, rules and elements of a Service port. */
export function nftablesServicePort(t: string, sp: ServicePortInfo, node: ProxyNode): string[] {
  const { clusterEndpoints, localEndpoints, reachable, hasAny, usesCluster, usesLocal, hasInternal, hasExternal, usesExternal, noEndpoints } = planServicePort(sp);
  const names = nftChains(sp);
  const internalChain = sp.internalPolicyLocal ? names.local : names.service;
  const externalPolicyChain = sp.externalPolicyLocal ? names.local : names.service;
  const usesFirewall = sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
  const internalVerdict = noEndpoints === 'REJECT' ? 'goto reject-chain' : 'drop';
  const externalVerdict = internalVerdict;
  const key = (ip: string) => `${ip} . ${sp.protocol} . ${sp.port}`;
  const comment = `comment "${sp.name}"`;

  const sets: string[] = [];
  const chains: string[] = [];
  const rules: string[] = [];
  const elements: string[] = [];
  const rule = (chain: string, text: string) => rules.push(`add rule ${t} ${chain} ${text}`);

  if (usesCluster) chains.push(names.service);
  if (usesLocal) chains.push(names.local);
  if (usesExternal) chains.push(names.external);
  if (usesFirewall) chains.push(names.firewall);
  for (const ep of reachable) chains.push(names.endpoint(ep));
  if (sp.affinitySeconds > 0) {
    for (const ep of reachable) sets.push(`add set ${t} ${names.affinity(ep)} { type ipv4_addr ; flags dynamic,timeout ; timeout ${sp.affinitySeconds}s ; }`);
  }

  elements.push(`add element ${t} cluster-ips { ${sp.clusterIP} }`);
  if (hasInternal) elements.push(`add element ${t} service-ips { ${key(sp.clusterIP)} : goto ${internalChain} }`);
  else elements.push(`add element ${t} no-endpoint-services { ${key(sp.clusterIP)} ${comment} : ${internalVerdict} }`);
  for (const ip of sp.externalIPs) {
    if (hasAny) elements.push(`add element ${t} service-ips { ${key(ip)} : goto ${names.external} }`);
    if (!hasExternal) elements.push(`add element ${t} no-endpoint-services { ${key(ip)} ${comment} : ${externalVerdict} }`);
  }
  for (const ip of sp.loadBalancerVIPs) {
    if (hasAny) elements.push(`add element ${t} service-ips { ${key(ip)} : goto ${names.external} }`);
    if (usesFirewall) elements.push(`add element ${t} firewall-ips { ${key(ip)} : goto ${names.firewall} }`);
  }
  if (!hasExternal) for (const ip of sp.loadBalancerVIPs) elements.push(`add element ${t} no-endpoint-services { ${key(ip)} ${comment} : ${externalVerdict} }`);
  if (sp.nodePort !== 0) {
    if (hasAny) elements.push(`add element ${t} service-nodeports { ${sp.protocol} . ${sp.nodePort} : goto ${names.external} }`);
    if (!hasExternal) elements.push(`add element ${t} no-endpoint-nodeports { ${sp.protocol} . ${sp.nodePort} ${comment} : ${externalVerdict} }`);
  }

  // Traffic to the cluster IP from outside the pod network is masqueraded: it may have been routed here from off-node.
  if (hasInternal) rule(internalChain, `ip daddr ${sp.clusterIP} ip saddr != ${node.podCidr} jump ${MASQ}`);
  if (usesExternal) {
    if (!sp.externalPolicyLocal) rule(names.external, `jump ${MASQ}`);
    else {
      // Pods and the node itself reach every endpoint, as if they had gone out to the load balancer and back in.
      rule(names.external, `ip saddr ${node.podCidr} goto ${names.service} comment "short-circuit pod traffic"`);
      rule(names.external, `fib saddr type local jump ${MASQ} comment "masquerade local traffic"`);
      rule(names.external, `fib saddr type local goto ${names.service} comment "short-circuit local traffic"`);
    }
    if (hasExternal) rule(names.external, `goto ${externalPolicyChain}`);
  }
  if (usesFirewall) {
    const sources = sp.loadBalancerSourceRanges.map((r) => normalizePrefix(r) ?? r);
    // A VIP that the node holds itself loops back with the VIP as source: allow it when the node may connect.
    const allowFromNode = sp.loadBalancerSourceRanges.some((r) => contains(r, node.ip));
    if (allowFromNode) sources.push(...sp.loadBalancerVIPs);
    rule(names.firewall, `ip saddr != { ${sources.join(' , ')} } drop`);
  }
  if (usesCluster) serviceToEndpoints(rule, names, sp, names.service, clusterEndpoints);
  if (usesLocal) serviceToEndpoints(rule, names, sp, names.local, localEndpoints);
  for (const ep of reachable) {
    const chain = names.endpoint(ep);
    rule(chain, `ip saddr ${ep.ip} jump ${MASQ}`);
    if (sp.affinitySeconds > 0) rule(chain, `update @${names.affinity(ep)} { ip saddr }`);
    rule(chain, `meta l4proto ${sp.protocol} dnat to ${ep.address}`);
  }
  return [`# ${sp.name}/${sp.protocol.toUpperCase()}`, ...sets, ...chains.map((c) => `add chain ${t} ${c}`), ...rules, ...elements];
}

function serviceToEndpoints(rule: (chain: string, text: string) => void, names: NftServicePortChains, sp: ServicePortInfo, chain: string, endpoints: EndpointInfo[]): void {
  if (sp.affinitySeconds > 0) for (const ep of endpoints) rule(chain, `ip saddr @${names.affinity(ep)} goto ${names.endpoint(ep)}`);
  const vmap = endpoints.map((ep, i) => `${i} : goto ${names.endpoint(ep)}`).join(' , ');
  rule(chain, `numgen random mod ${endpoints.length} vmap { ${vmap} }`);
}

/** nftablesRuleset is the whole transaction, in an order `nft -f` loads: base objects, then each Service port. */
export function nftablesRuleset(view: ServicePortInfo[], node: ProxyNode, options: NftablesOptions = { table: 'kube-proxy' }): string {
  const t = `ip ${options.table}`;
  const lines = nftablesBase(t, node, options.masquerade);
  // Ports of one Service share its cluster IP: the set holds it once, as kube-proxy's element storage does.
  const seen = new Set<string>();
  for (const sp of view) lines.push('', ...nftablesServicePort(t, sp, node).filter((l) => !l.startsWith('add element') || (!seen.has(l) && seen.add(l))));
  return `${lines.join('\n')}\n`;
}

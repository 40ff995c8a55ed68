// iptables.ts — the iptables-restore input kube-proxy's iptables proxier (pkg/proxy/iptables/proxier.go) writes for a node.
import { contains, normalizePrefix } from './ip.js';
import { iptEndpointChain, iptPortProtoHash } from './names.js';
import { planServicePort, type EndpointInfo, type ProxyNode, type ServicePortInfo } from './view.js';

export interface IptablesOptions {
  /** localhostNodePorts is --iptables-localhost-nodeports (default true): nodePorts answer on 127.0.0.1 too. */
  localhostNodePorts: boolean;
  /** nfacct adds the nfacct counters kube-proxy uses when the kernel has them. */
  nfacct: boolean;
  /** randomFully adds --random-fully to MASQUERADE, as kube-proxy does when iptables supports it. */
  randomFully: boolean;
  /** nodePortAddresses limits nodePorts to these IPs; empty means every local address (kube-proxy's default). */
  nodePortAddresses: string[];
  /** chainPrefix replaces "KUBE-": portlab's kernel mode writes chains of its own. */
  chainPrefix?: string;
  /** masqueradeTarget replaces MASQUERADE: an SNAT to the node where every hop is on lo. */
  masqueradeTarget?: string;
}

export const IPTABLES_DEFAULTS: IptablesOptions = { localhostNodePorts: true, nfacct: true, randomFully: true, nodePortAddresses: [] };

/** JumpRule is one rule kube-proxy ensures in a built-in chain (iptablesJumpChains), with -I, outside the restore input. */
export interface JumpRule {
  table: 'filter' | 'nat';
  from: string;
  to: string;
  args: string[];
}

// Listed in the order kube-proxy prepends them; each -I puts its rule first, so the last one listed runs first.
const JUMPS: [JumpRule['table'], string, string, string, string[]][] = [
  ['filter', 'KUBE-EXTERNAL-SERVICES', 'INPUT', 'kubernetes externally-visible service portals', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['filter', 'KUBE-EXTERNAL-SERVICES', 'FORWARD', 'kubernetes externally-visible service portals', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['filter', 'KUBE-NODEPORTS', 'INPUT', 'kubernetes health check service ports', []],
  ['filter', 'KUBE-SERVICES', 'FORWARD', 'kubernetes service portals', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['filter', 'KUBE-SERVICES', 'OUTPUT', 'kubernetes service portals', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['filter', 'KUBE-FORWARD', 'FORWARD', 'kubernetes forwarding rules', []],
  ['filter', 'KUBE-PROXY-FIREWALL', 'INPUT', 'kubernetes load balancer firewall', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['filter', 'KUBE-PROXY-FIREWALL', 'OUTPUT', 'kubernetes load balancer firewall', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['filter', 'KUBE-PROXY-FIREWALL', 'FORWARD', 'kubernetes load balancer firewall', ['-m', 'conntrack', '--ctstate', 'NEW']],
  ['nat', 'KUBE-SERVICES', 'OUTPUT', 'kubernetes service portals', []],
  ['nat', 'KUBE-SERVICES', 'PREROUTING', 'kubernetes service portals', []],
  ['nat', 'KUBE-POSTROUTING', 'POSTROUTING', 'kubernetes postrouting rules', []],
  // kubelet's copy of the anti-martian chain, which kube-proxy ensures too
  ['filter', 'KUBE-FIREWALL', 'INPUT', '', []],
  ['filter', 'KUBE-FIREWALL', 'OUTPUT', '', []],
];

/** jumpRules are the built-in chains' rules, first to last, as they stand once every -I has run. */
export function jumpRules(): JumpRule[] {
  return JUMPS.map(([table, to, from, comment, extra]) => ({ table, from, to, args: [...extra, ...(comment ? ['-m', 'comment', '--comment', `"${comment}"`] : []), '-j', to] })).reverse();
}

/** IptChains names one Service port's chains. */
export interface IptServicePortChains {
  service: string;
  local: string;
  external: string;
  firewall: string;
  endpoint(ep: EndpointInfo): string;
}

export function iptChains(sp: ServicePortInfo): IptServicePortChains {
  const hash = iptPortProtoHash(sp.spn, sp.protocol);
  return {
    service: `KUBE-SVC-${hash}`,
    local: `KUBE-SVL-${hash}`,
    external: `KUBE-EXT-${hash}`,
    firewall: `KUBE-FW-${hash}`,
    endpoint: (ep) => iptEndpointChain(sp.spn, sp.protocol, ep.address),
  };
}

/** kube-proxy leaves the per-endpoint comments out past 1,000 endpoints, to keep the restore input small. */
const LARGE_CLUSTER_ENDPOINTS = 1000;

interface Buffers {
  filterChains: string[];
  filterRules: string[];
  natChains: string[];
  natRules: string[];
}

const line = (...parts: (string | string[])[]) => parts.flat().join(' ');

/** iptablesRestore is the whole `iptables-restore --noflush` input of one sync, as kube-proxy writes it. */
export function iptablesRestore(view: ServicePortInfo[], node: ProxyNode, options: IptablesOptions = IPTABLES_DEFAULTS): string {
  const b: Buffers = { filterChains: [], filterRules: [], natChains: [], natRules: [] };
  for (const c of ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL']) b.filterChains.push(`:${c} - [0:0]`);
  for (const c of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']) b.natChains.push(`:${c} - [0:0]`);
  const mark = node.masqueradeMark;
  b.natRules.push(`-A KUBE-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`);
  b.natRules.push(`-A KUBE-POSTROUTING -j MARK --xor-mark ${mark}`);
  b.natRules.push(`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j ${options.masqueradeTarget ?? 'MASQUERADE'}${options.randomFully ? ' --random-fully' : ''}`);
  b.natRules.push(`-A KUBE-MARK-MASQ -j MARK --or-mark ${mark}`);
  const localhostNodePorts = options.localhostNodePorts && (options.nodePortAddresses.length === 0 || options.nodePortAddresses.some((a) => contains(a, '127.0.0.1')));
  if (localhostNodePorts) {
    // route_localnet makes nodePorts answer on 127.0.0.1; this rule closes the hole it opens (kubernetes#90259).
    b.filterChains.push(':KUBE-FIREWALL - [0:0]');
    b.filterRules.push('-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP');
  }
  const totalEndpoints = view.reduce((n, sp) => n + sp.endpoints.length, 0);
  const large = totalEndpoints > LARGE_CLUSTER_ENDPOINTS;
  for (const sp of view) servicePort(b, sp, node, options, localhostNodePorts, large);

  if (options.nodePortAddresses.length === 0) {
    b.natRules.push(line('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL', localhostNodePorts ? [] : ['!', '-d', '127.0.0.0/8'], '-j KUBE-NODEPORTS'));
  } else {
    for (const ip of options.nodePortAddresses) {
      b.natRules.push(`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d ${ip} -j KUBE-NODEPORTS`);
    }
  }
  b.filterRules.push(line('-A KUBE-FORWARD -m conntrack --ctstate INVALID', options.nfacct ? ['-m', 'nfacct', '--nfacct-name', 'ct_state_invalid_dropped_pkts'] : [], '-j DROP'));
  b.filterRules.push(`-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`);
  b.filterRules.push('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');

  const header = jumpRules().map((j) => `# kube-proxy also ensures: iptables -t ${j.table} -I ${j.from} ${j.args.join(' ')}`);
  const text = [...header, '*filter', ...b.filterChains, ...b.filterRules, 'COMMIT', '*nat', ...b.natChains, ...b.natRules, 'COMMIT', ''].join('\n');
  return options.chainPrefix ? text.replace(/\bKUBE-/g, options.chainPrefix) : text;
}

function servicePort(b: Buffers, sp: ServicePortInfo, node: ProxyNode, options: IptablesOptions, localhostNodePorts: boolean, large: boolean): void {
  const { clusterEndpoints, localEndpoints, reachable, hasAny, usesCluster, usesLocal, hasInternal, hasExternal, usesExternal, noEndpoints } = planServicePort(sp);
  const names = iptChains(sp);
  const p = sp.protocol;
  const name = sp.name;
  const internalChain = sp.internalPolicyLocal ? names.local : names.service;
  const externalPolicyChain = sp.externalPolicyLocal ? names.local : names.service;
  // Unlike nftables, iptables writes the firewall chain only when there is something to protect.
  const usesFirewall = hasAny && sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
  const lbChain = usesFirewall ? names.firewall : names.external;
  const [internalTarget, internalComment] = noEndpoints === 'REJECT' ? ['REJECT', `"${name} has no endpoints"`] : ['DROP', `"${name} has no local endpoints"`];
  const [externalTarget, externalComment] = [internalTarget, internalComment];
  const match = `-m ${p} -p ${p}`;
  const comment = (text: string) => (large ? '' : ` -m comment --comment ${text}`);

  if (hasInternal) b.natRules.push(`-A KUBE-SERVICES -m comment --comment "${name} cluster IP" ${match} -d ${sp.clusterIP} --dport ${sp.port} -j ${internalChain}`);
  else b.filterRules.push(`-A KUBE-SERVICES -m comment --comment ${internalComment} ${match} -d ${sp.clusterIP} --dport ${sp.port} -j ${internalTarget}`);
  for (const ip of sp.externalIPs) {
    if (hasAny) b.natRules.push(`-A KUBE-SERVICES -m comment --comment "${name} external IP" ${match} -d ${ip} --dport ${sp.port} -j ${names.external}`);
    if (!hasExternal) b.filterRules.push(`-A KUBE-EXTERNAL-SERVICES -m comment --comment ${externalComment} ${match} -d ${ip} --dport ${sp.port} -j ${externalTarget}`);
  }
  for (const ip of sp.loadBalancerVIPs) {
    if (hasAny) b.natRules.push(`-A KUBE-SERVICES -m comment --comment "${name} loadbalancer IP" ${match} -d ${ip} --dport ${sp.port} -j ${lbChain}`);
    if (usesFirewall) b.filterRules.push(`-A KUBE-PROXY-FIREWALL -m comment --comment "${name} traffic not accepted by ${names.firewall}" ${match} -d ${ip} --dport ${sp.port} -j DROP`);
  }
  if (!hasExternal) for (const ip of sp.loadBalancerVIPs) b.filterRules.push(`-A KUBE-EXTERNAL-SERVICES -m comment --comment ${externalComment} ${match} -d ${ip} --dport ${sp.port} -j ${externalTarget}`);
  if (sp.nodePort !== 0) {
    if (hasAny) {
      if (localhostNodePorts && options.nfacct) b.natRules.push(`-A KUBE-NODEPORTS -m comment --comment ${name} ${match} -d 127.0.0.0/8 --dport ${sp.nodePort} -m nfacct --nfacct-name localhost_nps_accepted_pkts -j ${names.external}`);
      b.natRules.push(`-A KUBE-NODEPORTS -m comment --comment ${name} ${match} --dport ${sp.nodePort} -j ${names.external}`);
    }
    if (!hasExternal) b.filterRules.push(`-A KUBE-EXTERNAL-SERVICES -m comment --comment ${externalComment} -m addrtype --dst-type LOCAL ${match} --dport ${sp.nodePort} -j ${externalTarget}`);
  }
  // Health checks answer whether or not this node has endpoints: accept them in the filter table.
  if (sp.healthCheckNodePort !== 0) b.filterRules.push(`-A KUBE-NODEPORTS -m comment --comment "${name} health check node port" -m tcp -p tcp --dport ${sp.healthCheckNodePort} -j ACCEPT`);

  if (hasInternal) b.natRules.push(`-A ${internalChain} -m comment --comment "${name} cluster IP" ${match} -d ${sp.clusterIP} --dport ${sp.port} ! -s ${node.podCidr} -j KUBE-MARK-MASQ`);
  if (usesExternal) {
    b.natChains.push(`:${names.external} - [0:0]`);
    if (!sp.externalPolicyLocal) b.natRules.push(`-A ${names.external} -m comment --comment "masquerade traffic for ${name} external destinations" -j KUBE-MARK-MASQ`);
    else {
      b.natRules.push(`-A ${names.external} -m comment --comment "pod traffic for ${name} external destinations" -s ${node.podCidr} -j ${names.service}`);
      b.natRules.push(`-A ${names.external} -m comment --comment "masquerade LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`);
      b.natRules.push(`-A ${names.external} -m comment --comment "route LOCAL traffic for ${name} external destinations" -m addrtype --src-type LOCAL -j ${names.service}`);
    }
    if (hasExternal) b.natRules.push(`-A ${names.external} -j ${externalPolicyChain}`);
  }
  if (usesFirewall) {
    b.natChains.push(`:${names.firewall} - [0:0]`);
    const head = `-A ${names.firewall} -m comment --comment "${name} loadbalancer IP"`;
    let allowFromNode = false;
    for (const range of sp.loadBalancerSourceRanges) {
      b.natRules.push(`${head} -s ${normalizePrefix(range) ?? range} -j ${names.external}`);
      allowFromNode ||= contains(range, node.ip);
    }
    // A VIP that the node holds itself loops back with the VIP as source: allow it when the node may connect.
    if (allowFromNode) for (const ip of sp.loadBalancerVIPs) b.natRules.push(`${head} -s ${ip} -j ${names.external}`);
    b.natRules.push(`-A ${names.firewall} -m comment --comment "other traffic to ${name} will be dropped by KUBE-PROXY-FIREWALL"`);
  }
  if (usesCluster) {
    b.natChains.push(`:${names.service} - [0:0]`);
    serviceToEndpoints(b, sp, names, names.service, clusterEndpoints, comment);
  }
  if (usesLocal) {
    b.natChains.push(`:${names.local} - [0:0]`);
    serviceToEndpoints(b, sp, names, names.local, localEndpoints, comment);
  }
  for (const ep of reachable) {
    const chain = names.endpoint(ep);
    b.natChains.push(`:${chain} - [0:0]`);
    const head = `-A ${chain}${comment(name)}`;
    b.natRules.push(`${head} -s ${ep.ip} -j KUBE-MARK-MASQ`);
    const recent = sp.affinitySeconds > 0 ? ` -m recent --name ${chain} --set` : '';
    b.natRules.push(`${head}${recent} ${match} -j DNAT --to-destination ${ep.address}`);
  }
}

function serviceToEndpoints(b: Buffers, sp: ServicePortInfo, names: IptServicePortChains, chain: string, endpoints: EndpointInfo[], comment: (text: string) => string): void {
  if (sp.affinitySeconds > 0) {
    for (const ep of endpoints) {
      b.natRules.push(`-A ${chain}${comment(`"${sp.name} -> ${ep.address}"`)} -m recent --name ${names.endpoint(ep)} --rcheck --seconds ${sp.affinitySeconds} --reap -j ${names.endpoint(ep)}`);
    }
  }
  endpoints.forEach((ep, i) => {
    // Each rule but the last takes its share of what is left: 1/n, then 1/(n-1), …, so every endpoint gets 1/n.
    const left = endpoints.length - i;
    const statistic = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
    b.natRules.push(`-A ${chain}${comment(`"${sp.name} -> ${ep.address}"`)}${statistic} -j ${names.endpoint(ep)}`);
  });
}

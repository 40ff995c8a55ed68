// view.ts — the desired state as kube-proxy's proxier sees it on one node: one ServicePortInfo per Service port,
// endpoints with their conditions and locality, and CategorizeEndpoints (pkg/proxy/topology.go).
import { parseCidr, parseServiceCidrs } from '../model/addresses.js';
import type { DesiredState, EndpointState, ServiceState } from '../model/state.js';
import { servicePortNameString, type ServicePortName } from './names.js';

/** ProxyNode is the node the rules are written for, and the proxier's own settings. */
export interface ProxyNode {
  name: string;
  /** ip is the node's IPv4 address: the nodeport-ips element, and the source that LoadBalancerSourceRanges may allow. */
  ip: string;
  /** podCidr is the local traffic detector's block (--cluster-cidr): traffic from it is pod traffic. */
  podCidr: string;
  /** serviceCidrs are the IPv4 Service blocks; a packet to an unallocated address in them is dropped. */
  serviceCidrs: string[];
  masqueradeMark: string;
}

export interface EndpointInfo {
  ip: string;
  port: number;
  /** address is "IP:port", kube-proxy's Endpoint.String(). */
  address: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** local is true when the endpoint's nodeName is this node's name. */
  local: boolean;
  podName?: string;
}

export interface ServicePortInfo {
  spn: ServicePortName;
  /** name is "ns/name:port", kube-proxy's ServicePortName.String() and the rules' comments. */
  name: string;
  protocol: 'tcp' | 'udp' | 'sctp';
  clusterIP: string;
  port: number;
  /** nodePort is 0 when the port has none. */
  nodePort: number;
  externalIPs: string[];
  loadBalancerVIPs: string[];
  loadBalancerSourceRanges: string[];
  /** affinitySeconds is sessionAffinityConfig.clientIP.timeoutSeconds with ClientIP affinity, 0 without. */
  affinitySeconds: number;
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  healthCheckNodePort: number;
  /** endpoints are sorted by "IP:port", as kube-proxy's endpoints map keeps them. */
  endpoints: EndpointInfo[];
}

const isIPv4 = (ip: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(ip);

/**
 * proxyView lists the Service ports kube-proxy's IPv4 proxier would program on `node`, sorted by name. Headless and
 * ExternalName Services have no rules, as in kube-proxy. LoadBalancer VIPs are status.loadBalancer.ingress when the
 * manifest has it, else the address portlab gives the LoadBalancer, so the rules match what portlab serves.
 */
export function proxyView(state: DesiredState, node: Pick<ProxyNode, 'name'>): ServicePortInfo[] {
  const out: ServicePortInfo[] = [];
  for (const svc of state.services) {
    if (svc.type === 'ExternalName' || svc.headless || !svc.clusterIP) continue;
    for (const sp of svc.ports) {
      const spn = { namespace: svc.namespace, service: svc.name, port: sp.name };
      const externallyAccessible = sp.nodePort !== undefined || lbVIPs(svc).length > 0 || svc.externalIPs.length > 0;
      out.push({
        spn,
        name: servicePortNameString(spn),
        protocol: sp.protocol.toLowerCase() as ServicePortInfo['protocol'],
        clusterIP: svc.clusterIP,
        port: sp.port,
        nodePort: sp.nodePort ?? 0,
        externalIPs: svc.externalIPs.filter(isIPv4),
        loadBalancerVIPs: lbVIPs(svc),
        loadBalancerSourceRanges: svc.type === 'LoadBalancer' ? svc.loadBalancerSourceRanges.filter((r) => isIPv4(r.split('/')[0]!)) : [],
        affinitySeconds: svc.sessionAffinity === 'ClientIP' ? svc.affinityTimeoutSeconds : 0,
        externalPolicyLocal: externallyAccessible && svc.externalTrafficPolicy === 'Local',
        internalPolicyLocal: svc.internalTrafficPolicy === 'Local',
        healthCheckNodePort: svc.healthCheckNodePort ?? 0,
        endpoints: endpointInfos(sp.endpoints, node.name),
      });
    }
  }
  return out.sort((a, b) => (a.name + a.protocol < b.name + b.protocol ? -1 : 1));
}

function lbVIPs(svc: ServiceState): string[] {
  if (svc.type !== 'LoadBalancer') return [];
  const ingress = svc.loadBalancerIngressIPs.filter(isIPv4);
  return ingress.length > 0 ? ingress : svc.loadBalancerIP ? [svc.loadBalancerIP] : [];
}

function endpointInfos(endpoints: EndpointState[], nodeName: string): EndpointInfo[] {
  const byAddress = new Map<string, EndpointInfo>();
  for (const e of endpoints) {
    if (!isIPv4(e.ip)) continue; // the IPv4 proxier reads only IPv4 slices
    const address = `${e.ip}:${e.port}`;
    byAddress.set(address, { ip: e.ip, port: e.port, address, ready: e.ready, serving: e.serving, terminating: e.terminating, local: e.node === nodeName, podName: e.podName });
  }
  return [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

/** externallyAccessible: a nodePort, a LoadBalancer VIP or an external IP. */
export function externallyAccessible(sp: ServicePortInfo): boolean {
  return sp.nodePort !== 0 || sp.loadBalancerVIPs.length > 0 || sp.externalIPs.length > 0;
}

/** usesClusterEndpoints: Cluster internal policy, or any external traffic (Local external policy short-circuits to them). */
export function usesClusterEndpoints(sp: ServicePortInfo): boolean {
  return !sp.internalPolicyLocal || externallyAccessible(sp);
}

export function usesLocalEndpoints(sp: ServicePortInfo): boolean {
  return sp.internalPolicyLocal || sp.externalPolicyLocal;
}

export interface Categorized {
  clusterEndpoints: EndpointInfo[];
  localEndpoints: EndpointInfo[];
  /** reachable are the endpoints this node's rules can send to: both lists merged, sorted. */
  reachable: EndpointInfo[];
  /** hasAny is true when some node has a usable endpoint. */
  hasAny: boolean;
}

/**
 * categorize is kube-proxy's CategorizeEndpoints without topology hints: ready endpoints, or when there are none,
 * serving and terminating ones; Local policies use this node's, with the same fallback.
 */
export function categorize(sp: ServicePortInfo): Categorized {
  const eps = sp.endpoints;
  let clusterEndpoints: EndpointInfo[] = [];
  let localEndpoints: EndpointInfo[] = [];
  let hasAny = false;
  if (usesClusterEndpoints(sp)) {
    clusterEndpoints = eps.filter((e) => e.ready);
    if (clusterEndpoints.length === 0) clusterEndpoints = eps.filter((e) => e.serving && e.terminating);
    hasAny = clusterEndpoints.length > 0;
  }
  if (!usesLocalEndpoints(sp)) return { clusterEndpoints, localEndpoints, reachable: clusterEndpoints, hasAny };
  let localReady = false;
  let localTerminating = false;
  for (const e of eps) {
    if (e.ready) {
      hasAny = true;
      localReady ||= e.local;
    } else if (e.serving && e.terminating) {
      hasAny = true;
      localTerminating ||= e.local;
    }
  }
  if (localReady) localEndpoints = eps.filter((e) => e.local && e.ready);
  else if (localTerminating) localEndpoints = eps.filter((e) => e.local && e.serving && e.terminating);
  if (!usesClusterEndpoints(sp)) return { clusterEndpoints, localEndpoints, reachable: localEndpoints, hasAny };
  const merged = new Map<string, EndpointInfo>();
  for (const e of [...clusterEndpoints, ...localEndpoints]) merged.set(e.address, e);
  const reachable = [...merged.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
  return { clusterEndpoints, localEndpoints, reachable, hasAny };
}

/** ServicePortPlan is what both kernel modes decide the same way for one Service port, before naming any chain. */
export interface ServicePortPlan extends Categorized {
  /** usesCluster / usesLocal: the Cluster and Local policy chains exist (they have endpoints and are used). */
  usesCluster: boolean;
  usesLocal: boolean;
  /** hasInternal / hasExternal: cluster IP and external traffic have somewhere to go; if not, they are rejected or dropped. */
  hasInternal: boolean;
  hasExternal: boolean;
  /** usesExternal: the external chain exists whenever any endpoint does (pods and the node short-circuit through it). */
  usesExternal: boolean;
  /** noEndpoints: REJECT when no node has an endpoint, DROP when only a Local policy finds none here. */
  noEndpoints: 'REJECT' | 'DROP';
}

/** planServicePort is the part of syncProxyRules' loop that the iptables and nftables proxiers share. */
export function planServicePort(sp: ServicePortInfo): ServicePortPlan {
  const c = categorize(sp);
  return {
    ...c,
    usesCluster: c.clusterEndpoints.length > 0 && usesClusterEndpoints(sp),
    usesLocal: c.localEndpoints.length > 0 && usesLocalEndpoints(sp),
    hasInternal: c.hasAny && !(sp.internalPolicyLocal && c.localEndpoints.length === 0),
    hasExternal: c.hasAny && !(sp.externalPolicyLocal && c.localEndpoints.length === 0),
    usesExternal: c.hasAny && externallyAccessible(sp),
    noEndpoints: c.hasAny ? 'DROP' : 'REJECT',
  };
}

/** proxyNode builds the node settings from portlab's flags: the pod block, the IPv4 Service block, kube-proxy's mark. */
export function proxyNode(name: string, ip: string, podCidr: string, serviceCidr: string): ProxyNode {
  parseCidr(podCidr);
  return { name, ip, podCidr, serviceCidrs: [parseServiceCidrs(serviceCidr).v4.text], masqueradeMark: '0x4000' };
}

/** findServicePort is the view of one Service port by portlab's key (ns/name:port/PROTO). */
export function findServicePort(state: DesiredState, node: ProxyNode, key: string): ServicePortInfo | undefined {
  for (const svc of state.services) {
    const sp = svc.ports.find((p) => p.key === key);
    if (sp) return proxyView({ ...state, services: [{ ...svc, ports: [sp] }] }, node)[0];
  }
  return undefined;
}

// desired-state.ts — desired state = f(manifests, previous state, overrides): every node, Service port, endpoint,
// stand-in pod and listener, with addresses. Pure: the sync layer diffs and applies its result.
import { PortlabError } from '../errors.js';
import type { Manifests, ServicePortSpec, ServiceSpec } from '../manifest/objects.js';
import { serviceKey } from '../manifest/objects.js';
import type { Problem } from '../manifest/problems.js';
import { AddressAllocator, parseCidr, parseServiceCidrs } from './addresses.js';
import { podEndpoints, sliceEndpoints, unmatchedSelector } from './endpoints.js';
import { LabelIndex } from './labels.js';
import { listenersFor, type ListenerOptions } from './listeners.js';
import { allocateNodePorts } from './node-ports.js';
import { planPods, type StandinPolicy } from './pods.js';
import { printOf } from './print.js';
import {
  servedPort,
  servicePortKey,
  type Claim,
  type DesiredState,
  type ForwardMode,
  type ListenerState,
  type NodeState,
  type Overrides,
  type PodState,
  type ServicePortState,
  type ServiceState,
} from './state.js';

export * from './state.js';
export { formatSelector } from './labels.js';

export interface PlanOptions extends ListenerOptions {
  nodeAddress: string;
  /** nodeAddress6 is the first node's IPv6 address (--node-address-v6): its nodePorts answer there too. */
  nodeAddress6?: string;
  nodes: number;
  nodeCidr: string;
  serviceCidr: string;
  podCidr: string;
  loadBalancerCidr: string;
  addresses: 'distinct' | 'shared';
  mode: 'auto' | 'tcp' | 'http';
  standins: StandinPolicy;
  nodePortRange: [number, number];
}

/** portMode picks L4 or L7 for a port: L7 for appProtocol http, or a port named http or http-*. */
export function portMode(p: Pick<ServicePortSpec, 'protocol' | 'name' | 'appProtocol'>, mode: PlanOptions['mode']): ForwardMode {
  if (p.protocol === 'UDP') return 'udp';
  if (p.protocol === 'SCTP') return 'sctp';
  if (mode === 'tcp') return 'tcp';
  if (mode === 'http') return 'http';
  const app = (p.appProtocol ?? '').toLowerCase();
  if (app === 'http' || p.name === 'http' || p.name.startsWith('http-')) return 'http';
  return 'tcp';
}

/** HTTP2_PORT: a port name or appProtocol that says HTTP/2 without TLS (gRPC, h2c). */
export const HTTP2_PORT = /^(grpc|grpc-.*|h2c|h2c-.*|kubernetes\.io\/h2c)$/;

/**
 * http2Note tells, at start, where an HTTP/2 port goes: at L4 its bytes pass through; at L7 (--mode http) HTTP/2
 * clients are refused, since the L7 proxy speaks HTTP/1.1. It returns undefined for every other port.
 */
function http2Note(svc: ServiceSpec, index: number, sp: ServicePortState): { warning: boolean; text: string } | undefined {
  if (!HTTP2_PORT.test(sp.name) && !HTTP2_PORT.test((sp.appProtocol ?? '').toLowerCase())) return undefined;
  const where = `${svc.source.at(['spec', 'ports', index])}: Service "${svc.name}" port "${sp.name || sp.port}"`;
  if (sp.mode === 'http') return { warning: true, text: `${where} says HTTP/2, but --mode http serves it at L7, which speaks HTTP/1.1: HTTP/2 and gRPC clients get a GOAWAY; use --mode auto to serve it at L4` };
  if (sp.mode === 'tcp') return { warning: false, text: `${where} says HTTP/2 (gRPC, h2c): it is served at L4, where its bytes pass through unchanged` };
  return undefined;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** buildDesiredState resolves pods, selectors, named ports, addresses, nodePorts and listeners. */
export function buildDesiredState(manifests: Manifests, options: PlanOptions, previous?: DesiredState, overrides: Overrides = new Map()): { state?: DesiredState; problems: Problem[] } {
  const problems: Problem[] = [];
  const warnings = [...manifests.warnings];
  const notes = [...manifests.notes];
  const shared = options.addresses === 'shared';

  const nodes: NodeState[] = [];
  if (options.nodes <= 1) nodes.push({ name: 'node-1', address: options.nodeAddress, address6: options.nodeAddress6 });
  else {
    const nodeAlloc = new AddressAllocator(parseCidr(options.nodeCidr));
    for (let i = 1; i <= options.nodes; i++) {
      nodes.push({ name: `node-${i}`, address: shared ? options.nodeAddress : nodeAlloc.allocate(`node-${i}`), address6: i === 1 ? options.nodeAddress6 : undefined });
    }
  }

  const planned = planPods(manifests, nodes, options.standins, notes).sort((a, b) => compare(a.key, b.key));
  const podAlloc = new AddressAllocator(parseCidr(options.podCidr), new Map(previous?.pods.map((p) => [p.key, p.ip])));
  podAlloc.reserveSticky(planned.map((p) => p.key));
  const pods: PodState[] = planned.map((p) => {
    const o = overrides.get(p.key);
    const running = !o?.killed;
    const probed = p.readinessDelayMs === 0 || o?.probePassed === true;
    const ready = running && (o?.ready ?? probed);
    let notReady: string | undefined;
    if (!running) notReady = 'killed; its workload brings it back';
    else if (o?.ready === false) notReady = 'marked unready (portlab pod unready)';
    else if (!ready) notReady = `for ${p.readinessDelayMs / 1000}s: readinessProbe.initialDelaySeconds`;
    return { ...p, ip: shared ? options.nodeAddress : podAlloc.allocate(p.key), running, ready, notReady };
  });

  const services = [...manifests.services].sort((a, b) => compare(serviceKey(a), serviceKey(b)));
  const clusterIPs = new AddressAllocator(parseServiceCidrs(options.serviceCidr).v4, new Map(previous?.services.flatMap((s) => (s.clusterIP ? [[s.key, s.clusterIP] as const] : []))));
  clusterIPs.reserveSticky(services.map(serviceKey));
  // A Service's own clusterIP is kept when it lies in --service-cidr, as the API server keeps a requested one.
  for (const svc of services) if (svc.requestedClusterIP && !shared) clusterIPs.claim(serviceKey(svc), svc.requestedClusterIP);
  const lbIPs = new AddressAllocator(parseCidr(options.loadBalancerCidr), new Map(previous?.services.flatMap((s) => (s.loadBalancerIP ? [[s.key, s.loadBalancerIP] as const] : []))));
  lbIPs.reserveSticky(services.map(serviceKey));
  let nodePorts;
  try {
    nodePorts = allocateNodePorts(services, options.nodePortRange, previous);
  } catch (err) {
    problems.push({ where: `${services[0]?.source.file ?? '<none>'}:1:1`, message: (err as Error).message });
    return { problems };
  }

  const podIndex = new LabelIndex(pods, (p) => p.labels);
  const slicesByService = new Map<string, Manifests['endpointSlices']>();
  for (const slice of manifests.endpointSlices) {
    const key = `${slice.namespace}/${slice.serviceName}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), slice]);
  }
  const states = services.map((svc) => {
    const key = serviceKey(svc);
    const hasAddress = svc.type !== 'ExternalName' && !svc.headless;
    const state: ServiceState = {
      key,
      namespace: svc.namespace,
      name: svc.name,
      type: svc.type,
      headless: svc.headless,
      clusterIP: hasAddress ? (shared ? options.nodeAddress : clusterIPs.allocate(key)) : undefined,
      loadBalancerIP: svc.type === 'LoadBalancer' ? (shared ? options.nodeAddress : lbIPs.allocate(key)) : undefined,
      loadBalancerIngressIPs: svc.type === 'LoadBalancer' ? svc.loadBalancerIngressIPs : [],
      externalIPs: svc.externalIPs,
      loadBalancerSourceRanges: svc.loadBalancerSourceRanges.map((r) => r.trim()),
      sessionAffinity: svc.sessionAffinity,
      affinityTimeoutSeconds: svc.affinityTimeoutSeconds,
      externalTrafficPolicy: svc.externalTrafficPolicy,
      internalTrafficPolicy: svc.internalTrafficPolicy,
      healthCheckNodePort: nodePorts.healthCheck.get(key),
      externalName: svc.externalName,
      selector: svc.selector,
      ports: [],
    };
    if (svc.type !== 'ExternalName') addPorts(svc, state, options, podIndex, pods, slicesByService.get(key) ?? [], nodePorts.byPort, warnings);
    // In a kernel mode every port is the kernel's DNAT, which HTTP/2 passes as any TCP.
    if (!options.kernelTranslates) state.ports.forEach((sp, i) => {
      const note = http2Note(svc, i, sp);
      if (note) (note.warning ? warnings : notes).push(note.text);
    });
    if (svc.ipFamilies.includes('IPv6') && state.clusterIP) {
      const v6 = options.nodeAddress6 && state.ports.some((p) => p.nodePort !== undefined) ? `, and its nodePorts on [${options.nodeAddress6}] as well as ${options.nodeAddress}` : '';
      notes.push(`${svc.source.at(['spec'])}: Service "${svc.name}" has ipFamilies [${svc.ipFamilies.join(', ')}]: portlab's proxier is IPv4, so it serves the cluster IP ${state.clusterIP}${v6}; no IPv6 cluster IP answers, and \`portlab rules\` prints the IPv4 proxier's rules only`);
    }
    if (svc.requestedClusterIP && svc.requestedClusterIP !== state.clusterIP) {
      notes.push(`${svc.source.at(['spec', 'clusterIP'])}: Service "${svc.name}" asks for clusterIP ${svc.requestedClusterIP}, outside --service-cidr ${parseServiceCidrs(options.serviceCidr).v4.text}; portlab gives it ${state.clusterIP} so it stays on loopback`);
    }
    return state;
  });
  addNumericTargetPorts(states, pods);

  const state: DesiredState = { nodes, services: states, pods, listeners: [], warnings, notes, portOffset: options.portOffset ?? 0 };
  const reused = previous ? keepUnchanged(previous, state) : new Set<ServiceState>();
  const previousListeners = new Map<string, ListenerState[]>();
  for (const l of previous?.listeners ?? []) {
    const list = previousListeners.get(l.serviceKey);
    if (list) list.push(l);
    else previousListeners.set(l.serviceKey, [l]);
  }
  for (const svc of state.services) {
    const list = reused.has(svc) ? (previousListeners.get(svc.key) ?? []) : listenersFor(svc, nodes, options);
    for (const l of list) state.listeners.push(l);
  }
  return { state, problems };
}

function addPorts(
  svc: ServiceSpec,
  state: ServiceState,
  options: PlanOptions,
  podIndex: LabelIndex<PodState>,
  pods: PodState[],
  slices: Manifests['endpointSlices'],
  nodePorts: Map<string, number>,
  warnings: string[],
): void {
  const selected = svc.selector ? podIndex.select(svc.namespace, svc.selector) : [];
  if (svc.selector && selected.length === 0) warnings.push(unmatchedSelector(svc, pods.filter((p) => p.namespace === svc.namespace)));
  for (const p of svc.ports) {
    const key = servicePortKey(svc, p);
    state.ports.push({
      key,
      serviceKey: state.key,
      name: p.name,
      protocol: p.protocol,
      port: p.port,
      targetPort: p.targetPort,
      nodePort: nodePorts.get(key),
      appProtocol: p.appProtocol,
      mode: portMode(p, options.mode),
      endpoints: svc.selector ? podEndpoints(svc, p, selected, warnings) : sliceEndpoints(p, slices),
    });
  }
  if (!svc.selector && !svc.headless && state.ports.every((p) => p.endpoints.length === 0)) {
    warnings.push(`${svc.source.at(['spec'])}: Service "${svc.name}" has no selector and no EndpointSlice or Endpoints whose ports match its port names: it has no endpoints, so connections to it are refused`);
  }
}

/** addNumericTargetPorts makes a stand-in pod listen on a numeric targetPort it does not declare: a real app would. */
function addNumericTargetPorts(services: ServiceState[], pods: PodState[]): void {
  const byKey = new Map(pods.map((p) => [p.key, p]));
  for (const svc of services) {
    for (const sp of svc.ports) {
      for (const ep of sp.endpoints) {
        const pod = ep.podKey ? byKey.get(ep.podKey) : undefined;
        if (pod && !pod.ports.some((cp) => cp.containerPort === ep.port && cp.protocol === sp.protocol)) {
          pod.ports = [...pod.ports, { containerPort: ep.port, protocol: sp.protocol }];
        }
      }
    }
  }
}

/**
 * keepUnchanged hands back the previous object for every Service and pod whose state did not change, and returns the
 * Services it kept. This is the change tracker: the diff compares by reference first, so a sync costs what the
 * change costs, not what the cluster costs.
 */
function keepUnchanged(prev: DesiredState, next: DesiredState): Set<ServiceState> {
  const kept = new Set<ServiceState>();
  if (printOf(prev.nodes) !== printOf(next.nodes)) return kept;
  next.nodes = prev.nodes;
  const oldServices = new Map(prev.services.map((s) => [s.key, s]));
  next.services = next.services.map((s) => {
    const old = oldServices.get(s.key);
    if (old && printOf(old) === printOf(s)) {
      kept.add(old);
      return old;
    }
    return s;
  });
  const oldPods = new Map(prev.pods.map((p) => [p.key, p]));
  next.pods = next.pods.map((p) => {
    const old = oldPods.get(p.key);
    return old && printOf(old) === printOf(p) ? old : p;
  });
  return kept;
}

/**
 * claims lists every address:port the state listens on (listeners and pod ports), so a clash (two owners, one
 * address:port) is found before anything opens.
 */
export function claims(state: DesiredState): Claim[] {
  const out: Claim[] = [];
  for (const pod of state.pods) {
    for (const cp of pod.ports) out.push({ address: pod.ip, port: servedPort(cp.containerPort, state.portOffset), protocol: cp.protocol, owner: `pod ${pod.key}`, field: `containerPort ${cp.containerPort}${cp.name ? ` (${cp.name})` : ''}` });
  }
  for (const l of state.listeners) out.push(l);
  return out;
}

/** checkClaims throws PORTLAB_ADDRESS_CLASH naming both owners of the first address:port wanted twice. */
export function checkClaims(list: Claim[], shared: boolean): void {
  const seen = new Map<string, Claim>();
  for (const c of list) {
    const key = `${c.address}:${c.port}/${c.protocol}`;
    const first = seen.get(key);
    if (first) {
      const why = shared ? ' (--addresses shared puts every layer on one address)' : '';
      throw new PortlabError('PORTLAB_ADDRESS_CLASH', `${c.address}:${c.port}/${c.protocol} is wanted twice${why}: by ${first.owner} ${first.field}, and by ${c.owner} ${c.field}`, {
        fix: shared ? 'Change one of the two ports, or drop --addresses shared so each layer gets its own address.' : 'Change one of the two ports, or give the address blocks (--service-cidr, --pod-cidr, --lb-cidr, --node-address) ranges that do not overlap.',
      });
    }
    seen.set(key, c);
  }
}

// desired-state.ts — Manifests → the desired state: every node, Service port, endpoint and stand-in pod, with addresses.
import { PortlabError } from '../errors.js';
import type { ContainerPortSpec, Manifests, Protocol, ServicePortSpec, ServiceSpec } from '../manifest/objects.js';
import { serviceKey } from '../manifest/objects.js';
import type { Problem } from '../manifest/problems.js';
import { AddressAllocator, parseCidr } from './addresses.js';
import { podName, templateHash } from './names.js';

export type ForwardMode = 'tcp' | 'http' | 'udp';

export interface PlanOptions {
  nodeAddress: string;
  nodes: number;
  nodeCidr: string;
  serviceCidr: string;
  podCidr: string;
  loadBalancerCidr: string;
  addresses: 'distinct' | 'shared';
  mode: 'auto' | 'tcp' | 'http';
  /** previous keeps addresses sticky across a reload. */
  previous?: DesiredState;
}

export interface NodeState {
  name: string;
  address: string;
}

/** PodState is one stand-in pod portlab will run. */
export interface PodState {
  key: string;
  namespace: string;
  name: string;
  ip: string;
  node: string;
  labels: Record<string, string>;
  ports: ContainerPortSpec[];
  owner: string;
}

/** EndpointState is one address:port a Service port forwards to: a stand-in pod, or the user's own process. */
export interface EndpointState {
  ip: string;
  port: number;
  ready: boolean;
  node?: string;
  podKey?: string;
  podName?: string;
}

/** ServicePortState is the unit kube-proxy calls ServicePortName: one port of one Service, keyed ns/name:port/PROTO. */
export interface ServicePortState {
  key: string;
  serviceKey: string;
  name: string;
  protocol: Protocol;
  port: number;
  targetPort: number | string;
  nodePort?: number;
  appProtocol?: string;
  mode: ForwardMode;
  endpoints: EndpointState[];
}

export interface ServiceState {
  key: string;
  namespace: string;
  name: string;
  type: ServiceSpec['type'];
  headless: boolean;
  clusterIP?: string;
  loadBalancerIP?: string;
  sessionAffinity: ServiceSpec['sessionAffinity'];
  affinityTimeoutSeconds: number;
  externalTrafficPolicy: ServiceSpec['externalTrafficPolicy'];
  internalTrafficPolicy: ServiceSpec['internalTrafficPolicy'];
  healthCheckNodePort?: number;
  externalName?: string;
  selector?: Record<string, string>;
  ports: ServicePortState[];
}

export interface DesiredState {
  nodes: NodeState[];
  services: ServiceState[];
  pods: PodState[];
  warnings: string[];
  notes: string[];
}

/** servicePortKey is the stable map key, as kube-proxy's ServicePortName: ns/name:port/PROTO. */
export function servicePortKey(svc: { namespace: string; name: string }, p: { name: string; port: number; protocol: string }): string {
  return `${svc.namespace}/${svc.name}:${p.name || p.port}/${p.protocol}`;
}

/** portMode picks L4 or L7 for a port, as PRODUCT.md's "Protocols and modes" says. */
export function portMode(p: Pick<ServicePortSpec, 'protocol' | 'name' | 'appProtocol'>, mode: PlanOptions['mode']): ForwardMode {
  if (p.protocol === 'UDP') return 'udp';
  if (mode === 'tcp') return 'tcp';
  if (mode === 'http') return 'http';
  const app = (p.appProtocol ?? '').toLowerCase();
  if (app === 'http' || p.name === 'http' || p.name.startsWith('http-')) return 'http';
  return 'tcp';
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/**
 * LabelIndex finds the objects a selector matches without scanning them all: it looks up the selector's first
 * label in an index of namespace/key=value, then checks the rest. Planning stays linear in the cluster's size.
 */
class LabelIndex<T extends { namespace: string }> {
  private readonly byLabel = new Map<string, T[]>();

  constructor(items: T[], labelsOf: (item: T) => Record<string, string>) {
    for (const item of items) {
      for (const [k, v] of Object.entries(labelsOf(item))) {
        const key = `${item.namespace}/${k}=${v}`;
        const list = this.byLabel.get(key);
        if (list) list.push(item);
        else this.byLabel.set(key, [item]);
      }
    }
  }

  select(namespace: string, selector: Record<string, string>, labelsOf: (item: T) => Record<string, string>): T[] {
    const first = Object.keys(selector)[0];
    if (first === undefined) return [];
    const candidates = this.byLabel.get(`${namespace}/${first}=${selector[first]}`) ?? [];
    return candidates.filter((item) => selects(selector, labelsOf(item)));
  }
}

export function formatSelector(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

interface PlannedPod extends Omit<PodState, 'ip' | 'node'> {
  replica: number;
  pinnedNode?: string;
}

/** planPods expands workloads into replicas, and gives a selector that matches nothing one default stand-in pod. */
function planPods(manifests: Manifests): PlannedPod[] {
  const pods: PlannedPod[] = [];
  const workloads = new LabelIndex(manifests.workloads, (w) => w.podLabels);
  for (const w of manifests.workloads) {
    const hash = templateHash((w.source.data.spec as Record<string, unknown> | undefined)?.template ?? w.source.data.spec);
    for (let i = 0; i < w.replicas; i++) {
      const name = podName(w.kind, w.name, hash, i);
      pods.push({ key: `${w.namespace}/${name}`, namespace: w.namespace, name, labels: w.podLabels, ports: [...w.ports], owner: `${w.kind}/${w.name}`, replica: i, pinnedNode: w.nodeName });
    }
  }
  for (const svc of manifests.services) {
    if (!svc.selector || svc.type === 'ExternalName') continue;
    if (workloads.select(svc.namespace, svc.selector, (w) => w.podLabels).length > 0) continue;
    const ports: ContainerPortSpec[] = [];
    for (const p of svc.ports) {
      if (typeof p.targetPort !== 'number' || p.protocol === 'SCTP') continue;
      // Two Service ports may share a targetPort; the pod listens on it once.
      if (ports.some((cp) => cp.containerPort === p.targetPort && cp.protocol === p.protocol)) continue;
      ports.push({ containerPort: p.targetPort, protocol: p.protocol, name: p.name || undefined });
    }
    const name = `${svc.name}-standin`;
    pods.push({ key: `${svc.namespace}/${name}`, namespace: svc.namespace, name, labels: { ...svc.selector }, ports, owner: `Service/${svc.name}`, replica: 0 });
  }
  return pods;
}

/** buildDesiredState resolves selectors, named ports and addresses. It is pure: the sync layer acts on its result. */
export function buildDesiredState(manifests: Manifests, options: PlanOptions): { state?: DesiredState; problems: Problem[] } {
  const problems: Problem[] = [];
  const warnings = [...manifests.warnings];
  const shared = options.addresses === 'shared';
  const prev = options.previous;

  const nodes: NodeState[] = [];
  if (options.nodes <= 1) nodes.push({ name: 'node-1', address: options.nodeAddress });
  else {
    const nodeAlloc = new AddressAllocator(parseCidr(options.nodeCidr));
    for (let i = 1; i <= options.nodes; i++) nodes.push({ name: `node-${i}`, address: shared ? options.nodeAddress : nodeAlloc.allocate(`node-${i}`) });
  }

  const planned = planPods(manifests).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const podAlloc = new AddressAllocator(parseCidr(options.podCidr), new Map(prev?.pods.map((p) => [p.key, p.ip])));
  podAlloc.reserveSticky(planned.map((p) => p.key));
  const pods: PodState[] = planned.map((p) => {
    const node = (p.pinnedNode && nodes.find((n) => n.name === p.pinnedNode)) || nodes[p.replica % nodes.length]!;
    const { replica: _r, pinnedNode: _n, ...rest } = p;
    return { ...rest, ip: shared ? options.nodeAddress : podAlloc.allocate(p.key), node: node.name };
  });

  const services = [...manifests.services].sort((a, b) => (serviceKey(a) < serviceKey(b) ? -1 : 1));
  const ipAlloc = new AddressAllocator(parseCidr(options.serviceCidr), new Map(prev?.services.flatMap((s) => (s.clusterIP ? [[s.key, s.clusterIP] as const] : []))));
  ipAlloc.reserveSticky(services.map(serviceKey));
  const lbAlloc = new AddressAllocator(parseCidr(options.loadBalancerCidr), new Map(prev?.services.flatMap((s) => (s.loadBalancerIP ? [[s.key, s.loadBalancerIP] as const] : []))));
  lbAlloc.reserveSticky(services.map(serviceKey));

  const states: ServiceState[] = [];
  const notes = [...manifests.notes];
  const podIndex = new LabelIndex(pods, (p) => p.labels);
  const slicesByService = new Map<string, Manifests['endpointSlices']>();
  for (const slice of manifests.endpointSlices) {
    const key = `${slice.namespace}/${slice.serviceName}`;
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), slice]);
  }
  for (const svc of services) {
    const key = serviceKey(svc);
    const hasAddress = svc.type !== 'ExternalName' && !svc.headless;
    const state: ServiceState = {
      key,
      namespace: svc.namespace,
      name: svc.name,
      type: svc.type,
      headless: svc.headless,
      clusterIP: hasAddress ? (shared ? options.nodeAddress : ipAlloc.allocate(key)) : undefined,
      loadBalancerIP: svc.type === 'LoadBalancer' ? (shared ? options.nodeAddress : lbAlloc.allocate(key)) : undefined,
      sessionAffinity: svc.sessionAffinity,
      affinityTimeoutSeconds: svc.affinityTimeoutSeconds,
      externalTrafficPolicy: svc.externalTrafficPolicy,
      internalTrafficPolicy: svc.internalTrafficPolicy,
      healthCheckNodePort: svc.healthCheckNodePort,
      externalName: svc.externalName,
      selector: svc.selector,
      ports: [],
    };
    if (svc.type !== 'ExternalName') {
      const selected = svc.selector ? podIndex.select(svc.namespace, svc.selector, (p) => p.labels) : [];
      const slices = slicesByService.get(key) ?? [];
      for (const p of svc.ports) {
        if (p.protocol === 'SCTP') continue;
        const endpoints = svc.selector ? podEndpoints(svc, p, selected, problems) : sliceEndpoints(svc, p, slices);
        state.ports.push({
          key: servicePortKey(svc, p),
          serviceKey: key,
          name: p.name,
          protocol: p.protocol,
          port: p.port,
          targetPort: p.targetPort,
          nodePort: p.nodePort,
          appProtocol: p.appProtocol,
          mode: portMode(p, options.mode),
          endpoints,
        });
      }
      if (!svc.selector && !svc.headless && state.ports.every((p) => p.endpoints.length === 0)) {
        warnings.push(`${svc.source.at(['spec'])}: Service "${svc.name}" has no selector and no EndpointSlice or Endpoints: it has no endpoints, so connections to it are refused`);
      }
    }
    if (svc.requestedClusterIP && svc.requestedClusterIP !== state.clusterIP) {
      notes.push(`${svc.source.at(['spec', 'clusterIP'])}: Service "${svc.name}" asks for clusterIP ${svc.requestedClusterIP}; portlab gives it ${state.clusterIP} from --service-cidr so it stays on loopback`);
    }
    states.push(state);
  }
  addNumericTargetPorts(states, pods);
  if (problems.length > 0) return { problems };
  const state = { nodes, services: states, pods, warnings, notes };
  if (prev) keepUnchanged(prev, state);
  return { state, problems };
}

const prints = new WeakMap<object, string>();

function printOf(o: object): string {
  let p = prints.get(o);
  if (p === undefined) {
    p = JSON.stringify(o);
    prints.set(o, p);
  }
  return p;
}

/**
 * keepUnchanged hands back the previous object for every Service and pod whose state did not change. This is the
 * change tracker: sync() compares by reference, so its cost grows with the change, not with the cluster.
 */
function keepUnchanged(prev: DesiredState, next: DesiredState): void {
  if (JSON.stringify(prev.nodes) !== JSON.stringify(next.nodes)) return;
  const oldServices = new Map(prev.services.map((s) => [s.key, s]));
  next.services = next.services.map((s) => {
    const old = oldServices.get(s.key);
    return old && printOf(old) === printOf(s) ? old : s;
  });
  const oldPods = new Map(prev.pods.map((p) => [p.key, p]));
  next.pods = next.pods.map((p) => {
    const old = oldPods.get(p.key);
    return old && printOf(old) === printOf(p) ? old : p;
  });
}

/**
 * podEndpoints resolves targetPort per pod as the endpoints controller does: a number is used as is, a name goes
 * through that pod's containerPorts, and a pod without the name is left out.
 */
function podEndpoints(svc: ServiceSpec, p: ServicePortSpec, selected: PodState[], problems: Problem[]): EndpointState[] {
  const out: EndpointState[] = [];
  for (const pod of selected) {
    let port: number | undefined;
    if (typeof p.targetPort === 'number') port = p.targetPort;
    else port = pod.ports.find((cp) => cp.name === p.targetPort && cp.protocol === p.protocol)?.containerPort;
    if (port !== undefined) out.push({ ip: pod.ip, port, ready: true, node: pod.node, podKey: pod.key, podName: pod.name });
  }
  if (typeof p.targetPort === 'string' && out.length === 0) {
    const owners = [...new Set(selected.map((s) => s.owner))].join(', ');
    const whose = selected.length > 0 ? `the pods selected by ${formatSelector(svc.selector!)} (${owners})` : `any workload: nothing matches the selector ${formatSelector(svc.selector!)}`;
    problems.push({
      where: svc.source.at(['spec', 'ports', p.index, 'targetPort']),
      message: `The Service "${svc.name}" is invalid: spec.ports[${p.index}].targetPort: Invalid value: "${p.targetPort}": no ${p.protocol} containerPort named "${p.targetPort}" in ${whose}; name a containerPort "${p.targetPort}" or use a port number`,
    });
  }
  return out;
}

/** sliceEndpoints reads EndpointSlices (and Endpoints) labelled for a Service without a selector. */
function sliceEndpoints(svc: ServiceSpec, p: ServicePortSpec, slices: Manifests['endpointSlices']): EndpointState[] {
  const out: EndpointState[] = [];
  for (const slice of slices) {
    const match = slice.ports.find((sp) => sp.protocol === p.protocol && (sp.name === p.name || (slice.ports.length === 1 && svc.ports.length === 1)));
    if (!match) continue;
    for (const e of slice.endpoints) out.push({ ip: e.address, port: match.port, ready: e.ready, node: e.nodeName });
  }
  return out;
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

/** Claim is one address:port/protocol that one owner will listen on. */
export interface Claim {
  address: string;
  port: number;
  protocol: Protocol;
  owner: string;
  field: string;
}

/**
 * claims lists every listener the state needs, so a clash (two owners, one address:port) is found before anything
 * opens. With distinct addresses this cannot happen; with --addresses shared it names both owners.
 */
export function claims(state: DesiredState): Claim[] {
  const out: Claim[] = [];
  for (const pod of state.pods) {
    for (const cp of pod.ports) out.push({ address: pod.ip, port: cp.containerPort, protocol: cp.protocol, owner: `pod ${pod.key}`, field: `containerPort ${cp.containerPort}${cp.name ? ` (${cp.name})` : ''}` });
  }
  for (const svc of state.services) {
    for (const sp of svc.ports) {
      const portName = sp.name || String(sp.port);
      if (svc.clusterIP) out.push({ address: svc.clusterIP, port: sp.port, protocol: sp.protocol, owner: `Service ${svc.key}`, field: `spec.ports[${portName}].port` });
      if (svc.loadBalancerIP) out.push({ address: svc.loadBalancerIP, port: sp.port, protocol: sp.protocol, owner: `Service ${svc.key} (LoadBalancer)`, field: `spec.ports[${portName}].port` });
      if (sp.nodePort !== undefined) {
        for (const node of state.nodes) out.push({ address: node.address, port: sp.nodePort, protocol: sp.protocol, owner: `Service ${svc.key} on ${node.name}`, field: `spec.ports[${portName}].nodePort` });
      }
    }
    if (svc.healthCheckNodePort !== undefined) {
      for (const node of state.nodes) out.push({ address: node.address, port: svc.healthCheckNodePort, protocol: 'TCP', owner: `Service ${svc.key} on ${node.name}`, field: 'spec.healthCheckNodePort' });
    }
  }
  return out;
}

/** checkClaims throws PORTLAB_ADDRESS_CLASH naming both owners of the first address:port wanted twice. */
export function checkClaims(list: Claim[]): void {
  const seen = new Map<string, Claim>();
  for (const c of list) {
    const key = `${c.address}:${c.port}/${c.protocol}`;
    const first = seen.get(key);
    if (first) {
      throw new PortlabError(
        'PORTLAB_ADDRESS_CLASH',
        `${c.address}:${c.port}/${c.protocol} is wanted twice: by ${first.owner} ${first.field}, and by ${c.owner} ${c.field}`,
      );
    }
    seen.set(key, c);
  }
}


// listeners.ts — the userspace data plane's table: for each Service, the listeners it needs and their routes, as data.
import { hostPort, listenerKey, servedPort, type BalanceMode, type EndpointState, type ListenerState, type NodeState, type Route, type ServicePortState, type ServiceState, type Upstream } from './state.js';

export interface ListenerOptions {
  balance: BalanceMode;
  nodeportHop: 'via-service' | 'direct';
  idleTimeoutMs: number;
  /** portOffset is --port-offset: what servedPort adds to ports below 1024. */
  portOffset?: number;
  /** kernelTranslates: the kernel translates Service addresses (--proxy-mode nftables|iptables); only health checks listen. */
  kernelTranslates?: boolean;
}

// One Upstream per endpoint object: a Service whose state did not change keeps its endpoint objects, and so its
// upstreams, so a sync does not make new ones and the forwarders' per-upstream caches stay warm.
const upstreams = new WeakMap<EndpointState, Upstream>();

/** toUpstream: a stand-in pod listens at its served port; your own process is reached where its EndpointSlice says. */
function toUpstream(ep: EndpointState, offset: number): Upstream {
  let up = upstreams.get(ep);
  if (!up) {
    const port = ep.podKey ? servedPort(ep.port, offset) : ep.port;
    up = { host: ep.ip, port, address: `${ep.ip}:${port}`, internal: false, podName: ep.podName, node: ep.node };
    upstreams.set(ep, up);
  }
  return up;
}

/** listenersFor lists the listeners one Service needs: service and LB ports, its nodePorts and health checks on every node. */
export function listenersFor(svc: ServiceState, nodes: NodeState[], options: ListenerOptions): ListenerState[] {
  const out: ListenerState[] = [];
  if (svc.type === 'ExternalName' || svc.headless) return out;
  const hostNode = nodes[0]!.name;
  const offset = options.portOffset ?? 0;
  for (const sp of svc.ports) {
    if (sp.mode === 'sctp' || options.kernelTranslates) continue; // Node.js has no SCTP sockets; the kernel needs no listener
    const portName = sp.name || String(sp.port);
    const ready = sp.endpoints.filter((e) => e.ready).map((e) => toUpstream(e, offset));
    const base = {
      servicePort: sp.key,
      serviceName: `${svc.key}:${portName}`,
      balance: options.balance,
      affinityTimeoutMs: svc.sessionAffinity === 'ClientIP' ? svc.affinityTimeoutSeconds * 1000 : 0,
      endpoints: ready,
      externalLocal: false,
      hasLocalEndpoint: false,
      internalLocal: false,
      hostNode,
      idleTimeoutMs: options.idleTimeoutMs,
    } satisfies Omit<Route, 'layer' | 'listen'>;
    const add = (layer: Route['layer'], address: string, declared: number, owner: string, field: string, route: Partial<Route>) => {
      const port = servedPort(declared, offset);
      out.push({
        key: listenerKey(address, port, sp.protocol),
        address,
        port,
        protocol: sp.protocol,
        owner,
        field,
        serviceKey: svc.key,
        servicePort: sp.key,
        layer,
        mode: sp.mode,
        route: { ...base, layer, listen: hostPort(address, port), ...route },
      });
    };
    if (svc.clusterIP) add('service', svc.clusterIP, sp.port, `Service ${svc.key}`, `spec.ports[${portName}].port`, { internalLocal: svc.internalTrafficPolicy === 'Local' });
    if (svc.loadBalancerIP) add('loadbalancer', svc.loadBalancerIP, sp.port, `Service ${svc.key} (LoadBalancer)`, `spec.ports[${portName}].port`, {});
    if (sp.nodePort !== undefined) {
      for (const node of nodes) {
        const route = nodeRoute(svc, sp, node, ready, options);
        add('node', node.address, sp.nodePort, `Service ${svc.key} on ${node.name}`, `spec.ports[${portName}].nodePort`, route);
        if (node.address6) add('node', node.address6, sp.nodePort, `Service ${svc.key} on ${node.name} (IPv6)`, `spec.ports[${portName}].nodePort`, route);
      }
    }
  }
  if (svc.healthCheckNodePort !== undefined) {
    for (const node of nodes) {
      const local = new Set<string>();
      for (const sp of svc.ports) for (const e of sp.endpoints) if (e.ready && e.node === node.name) local.add(e.ip);
      out.push({
        key: listenerKey(node.address, servedPort(svc.healthCheckNodePort, offset), 'TCP'),
        address: node.address,
        port: servedPort(svc.healthCheckNodePort, offset),
        protocol: 'TCP',
        owner: `Service ${svc.key} on ${node.name}`,
        field: 'spec.healthCheckNodePort',
        serviceKey: svc.key,
        servicePort: '',
        layer: 'health',
        mode: 'health',
        route: { namespace: svc.namespace, name: svc.name, node: node.name, localEndpoints: local.size },
      });
    }
  }
  return out;
}

/** nodeRoute: a nodePort forwards to the Service's port (via-service, the seed's picture) or straight to a pod (direct). */
function nodeRoute(svc: ServiceState, sp: ServicePortState, node: NodeState, ready: Upstream[], options: ListenerOptions): Partial<Route> {
  const viaService = options.nodeportHop === 'via-service' && svc.clusterIP !== undefined;
  const port = servedPort(sp.port, options.portOffset ?? 0);
  return {
    node: node.name,
    externalLocal: svc.externalTrafficPolicy === 'Local',
    hasLocalEndpoint: ready.some((e) => e.node === node.name),
    serviceHop: viaService ? { host: svc.clusterIP!, port, address: `${svc.clusterIP}:${port}`, internal: true } : undefined,
  };
}

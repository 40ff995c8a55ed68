// state.ts — the desired state as data: nodes, Services, endpoints, stand-in pods, and the listener table every
// data plane reads. Nothing here holds a socket or a closure.
import type { ContainerPortSpec, Protocol, ServiceSpec } from '../manifest/objects.js';

/** ForwardMode is how the userspace proxy forwards a port; 'sctp' ports have no userspace forwarder (kernel modes only). */
export type ForwardMode = 'tcp' | 'http' | 'udp' | 'sctp';
export type BalanceMode = 'random' | 'round-robin';
export type Layer = 'node' | 'service' | 'loadbalancer' | 'pod';
export type ListenerLayer = 'node' | 'service' | 'loadbalancer' | 'health';

export interface NodeState {
  name: string;
  address: string;
  /** address6 is where this node's nodePorts answer over IPv6 too (the machine's own node: --node-address-v6). */
  address6?: string;
}

/** PodState is one stand-in pod portlab runs, with the readiness the endpoints controller would see. */
export interface PodState {
  key: string;
  namespace: string;
  name: string;
  ip: string;
  node: string;
  labels: Record<string, string>;
  ports: ContainerPortSpec[];
  /** owner is the workload that made it, e.g. Deployment/my-app, or Service/my-service for a stand-in. */
  owner: string;
  /** running is false while a killed pod waits for its restart. */
  running: boolean;
  /** ready is what its readiness probe (or `portlab pod ready|unready`) says now; a pod that is not running is not ready. */
  ready: boolean;
  /** readinessDelayMs is the longest readinessProbe.initialDelaySeconds of its containers, in ms. */
  readinessDelayMs: number;
  /** notReady says why a pod is not ready, in words for the routes table and the dashboard. */
  notReady?: string;
}

/** EndpointState is one address:port a Service port forwards to: a stand-in pod, or the user's own process. */
export interface EndpointState {
  ip: string;
  port: number;
  /** ready, serving and terminating are the EndpointSlice conditions, as kube-proxy reads them. */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
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
  /** loadBalancerIP is where the userspace proxy serves the LoadBalancer: portlab's own loopback address. */
  loadBalancerIP?: string;
  /** loadBalancerIngressIPs are status.loadBalancer.ingress[].ip as written; the kernel rules use them when set. */
  loadBalancerIngressIPs: string[];
  externalIPs: string[];
  loadBalancerSourceRanges: string[];
  sessionAffinity: ServiceSpec['sessionAffinity'];
  affinityTimeoutSeconds: number;
  externalTrafficPolicy: ServiceSpec['externalTrafficPolicy'];
  internalTrafficPolicy: ServiceSpec['internalTrafficPolicy'];
  healthCheckNodePort?: number;
  externalName?: string;
  selector?: Record<string, string>;
  ports: ServicePortState[];
}

/** Upstream is where one connection or request goes next: portlab's own inner hop, a stand-in pod, or your process. */
export interface Upstream {
  host: string;
  port: number;
  /** address is host:port, made once per endpoint: the log and error messages print it for every request. */
  address: string;
  /** internal marks portlab's own next hop (node → service), which tracks the flow through Conntrack. */
  internal: boolean;
  podName?: string;
  node?: string;
}

/** Route is what one forwarding listener does, as data: the forwarding layer's choose() reads it per connection. */
export interface Route {
  layer: Exclude<Layer, 'pod'>;
  /** listen is address:port as users type it. */
  listen: string;
  servicePort: string;
  serviceName: string;
  balance: BalanceMode;
  /** affinityTimeoutMs is sessionAffinity ClientIP's timeout; 0 when there is no affinity. */
  affinityTimeoutMs: number;
  /** endpoints are the ready endpoints, in a stable order. */
  endpoints: Upstream[];
  /** node is the node a node-layer listener stands for. */
  node?: string;
  /** externalLocal applies externalTrafficPolicy: Local at the node layer. */
  externalLocal: boolean;
  /** hasLocalEndpoint: a ready endpoint runs on `node` (a Local policy DROPs without one). */
  hasLocalEndpoint: boolean;
  /** serviceHop is portlab's own service listener, the next hop of a nodePort with --nodeport-hop via-service. */
  serviceHop?: Upstream;
  /** internalLocal applies internalTrafficPolicy: Local at the service layer. */
  internalLocal: boolean;
  /** hostNode is the node a client on the host counts as on (the first node). */
  hostNode: string;
  idleTimeoutMs: number;
}

/** HealthRoute is what a healthCheckNodePort answers: the Service and how many of its endpoints run on this node. */
export interface HealthRoute {
  namespace: string;
  name: string;
  node: string;
  localEndpoints: number;
}

/** Claim is one address:port/protocol that one owner listens on, named for error messages. */
export interface Claim {
  address: string;
  port: number;
  protocol: Protocol;
  owner: string;
  field: string;
}

/** ListenerState is one row of the userspace data plane's table: a listener, its identity and its route. */
export type ListenerState = Claim & {
  /** key is address:port/PROTO: one socket. */
  key: string;
  serviceKey: string;
  /** servicePort is the Service port it forwards ('' for a health check). */
  servicePort: string;
} & ({ layer: Exclude<ListenerLayer, 'health'>; mode: ForwardMode; route: Route } | { layer: 'health'; mode: 'health'; route: HealthRoute });

export interface DesiredState {
  nodes: NodeState[];
  services: ServiceState[];
  pods: PodState[];
  listeners: ListenerState[];
  warnings: string[];
  notes: string[];
  /** portOffset is --port-offset: ports below 1024 are served at port + portOffset (0: as declared). */
  portOffset: number;
}

/** PodOverride is what a user changed at run time: `pod kill` (running false), `pod ready|unready`, or a probe passing. */
export interface PodOverride {
  killed?: boolean;
  ready?: boolean;
  probePassed?: boolean;
}

/** Overrides are run-time inputs of the next sync, keyed by pod key (ns/name). */
export type Overrides = ReadonlyMap<string, PodOverride>;

/** servicePortKey is the stable map key, as kube-proxy's ServicePortName: ns/name:port/PROTO. */
export function servicePortKey(svc: { namespace: string; name: string }, p: { name: string; port: number; protocol: string }): string {
  return `${svc.namespace}/${svc.name}:${p.name || p.port}/${p.protocol}`;
}

/**
 * servedPort is where a declared port is served: with --port-offset N, a port below 1024 (which needs root to bind)
 * is served at port + N, so `port: 80` answers on 8080 with --port-offset 8000. Other ports are served as declared.
 */
export function servedPort(port: number, offset: number): number {
  return offset > 0 && port < 1024 ? port + offset : port;
}

export function listenerKey(address: string, port: number, protocol: string): string {
  return `${hostPort(address, port)}/${protocol}`;
}

/** hostPort writes address:port as a URL or a log does: IPv6 in brackets. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

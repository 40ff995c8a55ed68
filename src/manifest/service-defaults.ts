// service-defaults.ts — a decoded v1.Service with the API server's defaults applied (SetDefaults_Service), in the
// field names of the API, ready for allocation and validation.
import { isPlainObject, type ManifestObject } from './documents.js';

export interface ServicePortObject {
  name: string;
  protocol: string;
  appProtocol?: string;
  port: number;
  targetPort: number | string;
  nodePort: number;
}

/** ServiceObject is a Service as the API server holds it after decoding and defaulting, before allocation. */
export interface ServiceObject {
  name: string;
  namespace: string;
  annotations: Record<string, string>;
  type: string;
  /** inferredType is portlab's one departure: a nodePort without `type` reads as NodePort, with a warning. */
  inferredType: boolean;
  ports: ServicePortObject[];
  selector?: Record<string, string>;
  clusterIP: string;
  clusterIPs: string[];
  /** clusterIPsGiven is true when the manifest wrote clusterIPs itself (positions point there, else at clusterIP). */
  clusterIPsGiven: boolean;
  ipFamilies: string[];
  ipFamilyPolicy?: string;
  externalIPs: string[];
  sessionAffinity: string;
  affinityTimeoutSeconds?: number;
  loadBalancerIP?: string;
  loadBalancerSourceRanges: string[];
  externalName: string;
  externalTrafficPolicy: string;
  healthCheckNodePort: number;
  allocateLoadBalancerNodePorts?: boolean;
  loadBalancerClass?: string;
  internalTrafficPolicy?: string;
  trafficDistribution?: string;
  publishNotReadyAddresses: boolean;
  /** ingressIPs are status.loadBalancer.ingress[].ip, as a cloud's controller wrote them. */
  ingressIPs: string[];
}

/** DEFAULT_AFFINITY_SECONDS is v1.DefaultClientIPServiceAffinitySeconds: three hours. */
export const DEFAULT_AFFINITY_SECONDS = 10800;

const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map((x) => String(x)) : []);
const map = (v: unknown): Record<string, string> | undefined => (isPlainObject(v) ? (v as Record<string, string>) : undefined);

/** externallyAccessible is apiservice.ExternallyAccessible: NodePort, LoadBalancer, or ClusterIP with externalIPs. */
export function externallyAccessible(s: Pick<ServiceObject, 'type' | 'externalIPs'>): boolean {
  return s.type === 'LoadBalancer' || s.type === 'NodePort' || (s.type === 'ClusterIP' && s.externalIPs.length > 0);
}

/** needsHealthCheck is apiservice.NeedsHealthCheck: a LoadBalancer with externalTrafficPolicy Local. */
export function needsHealthCheck(s: Pick<ServiceObject, 'type' | 'externalTrafficPolicy'>): boolean {
  return s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local';
}

/** readService decodes obj (already checked against the v1.Service schema) and applies SetDefaults_Service. */
export function readService(obj: ManifestObject): ServiceObject {
  const data = obj.data;
  const meta = isPlainObject(data.metadata) ? data.metadata : {};
  const spec = isPlainObject(data.spec) ? data.spec : {};
  const rawPorts = Array.isArray(spec.ports) ? spec.ports : [];
  const ports: ServicePortObject[] = rawPorts.map((raw) => {
    const p = isPlainObject(raw) ? raw : {};
    const port = typeof p.port === 'number' ? p.port : 0;
    let targetPort = p.targetPort as number | string | undefined | null;
    if (targetPort === undefined || targetPort === null || targetPort === 0 || targetPort === '') targetPort = port;
    return {
      name: str(p.name),
      protocol: str(p.protocol, 'TCP') || 'TCP',
      appProtocol: typeof p.appProtocol === 'string' ? p.appProtocol : undefined,
      port,
      targetPort,
      nodePort: typeof p.nodePort === 'number' ? p.nodePort : 0,
    };
  });
  let type = str(spec.type);
  const inferredType = type === '' && ports.some((p) => p.nodePort !== 0);
  if (inferredType) type = 'NodePort';
  if (type === '') type = 'ClusterIP';
  let sessionAffinity = str(spec.sessionAffinity);
  if (sessionAffinity === '') sessionAffinity = 'None';
  const timeout = isPlainObject(spec.sessionAffinityConfig) && isPlainObject(spec.sessionAffinityConfig.clientIP) ? spec.sessionAffinityConfig.clientIP.timeoutSeconds : undefined;
  const externalIPs = strings(spec.externalIPs);
  const svc: ServiceObject = {
    name: obj.name,
    namespace: obj.namespace,
    annotations: map(meta.annotations) ?? {},
    type,
    inferredType,
    ports,
    selector: map(spec.selector),
    clusterIP: str(spec.clusterIP),
    clusterIPs: strings(spec.clusterIPs),
    clusterIPsGiven: Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0,
    ipFamilies: strings(spec.ipFamilies),
    ipFamilyPolicy: typeof spec.ipFamilyPolicy === 'string' ? spec.ipFamilyPolicy : undefined,
    externalIPs,
    sessionAffinity,
    // SetDefaults_Service clears the config for None, and gives ClientIP its default timeout.
    affinityTimeoutSeconds: sessionAffinity === 'ClientIP' ? (typeof timeout === 'number' ? timeout : DEFAULT_AFFINITY_SECONDS) : undefined,
    loadBalancerIP: typeof spec.loadBalancerIP === 'string' && spec.loadBalancerIP !== '' ? spec.loadBalancerIP : undefined,
    loadBalancerSourceRanges: strings(spec.loadBalancerSourceRanges),
    externalName: str(spec.externalName),
    externalTrafficPolicy: str(spec.externalTrafficPolicy),
    healthCheckNodePort: typeof spec.healthCheckNodePort === 'number' ? spec.healthCheckNodePort : 0,
    allocateLoadBalancerNodePorts: typeof spec.allocateLoadBalancerNodePorts === 'boolean' ? spec.allocateLoadBalancerNodePorts : undefined,
    loadBalancerClass: typeof spec.loadBalancerClass === 'string' ? spec.loadBalancerClass : undefined,
    internalTrafficPolicy: typeof spec.internalTrafficPolicy === 'string' ? spec.internalTrafficPolicy : undefined,
    trafficDistribution: typeof spec.trafficDistribution === 'string' ? spec.trafficDistribution : undefined,
    publishNotReadyAddresses: spec.publishNotReadyAddresses === true,
    ingressIPs: ingressIPs(data.status),
  };
  if (externallyAccessible(svc) && svc.externalTrafficPolicy === '') svc.externalTrafficPolicy = 'Cluster';
  if (svc.internalTrafficPolicy === undefined && ['NodePort', 'LoadBalancer', 'ClusterIP'].includes(type)) svc.internalTrafficPolicy = 'Cluster';
  if (type === 'LoadBalancer' && svc.allocateLoadBalancerNodePorts === undefined) svc.allocateLoadBalancerNodePorts = true;
  return svc;
}

function ingressIPs(status: unknown): string[] {
  const lb = isPlainObject(status) && isPlainObject(status.loadBalancer) ? status.loadBalancer : {};
  const ingress = Array.isArray(lb.ingress) ? lb.ingress : [];
  return ingress.flatMap((i) => (isPlainObject(i) && typeof i.ip === 'string' && i.ip !== '' ? [i.ip] : []));
}

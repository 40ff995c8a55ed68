// objects.ts — the typed, defaulted Kubernetes objects portlab works from (after decode and validation).
import type { ManifestObject } from './documents.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

/** ServicePortSpec is one entry of spec.ports after defaulting (protocol TCP, targetPort = port). */
export interface ServicePortSpec {
  index: number;
  name: string;
  protocol: Protocol;
  appProtocol?: string;
  port: number;
  targetPort: number | string;
  /** nodePort is the nodePort the manifest asks for; the model allocates one where it is left out. */
  nodePort?: number;
}

/** ServiceSpec is a defaulted v1.Service. */
export interface ServiceSpec {
  namespace: string;
  name: string;
  type: ServiceType;
  headless: boolean;
  /** requestedClusterIP is spec.clusterIP as written (e.g. from `kubectl get -o yaml`); kept when in --service-cidr. */
  requestedClusterIP?: string;
  requestedClusterIPs: string[];
  /** ipFamilies are the Service's families after allocation, primary first. */
  ipFamilies: string[];
  selector?: Record<string, string>;
  ports: ServicePortSpec[];
  sessionAffinity: 'None' | 'ClientIP';
  affinityTimeoutSeconds: number;
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy: 'Cluster' | 'Local';
  healthCheckNodePort?: number;
  externalName?: string;
  externalIPs: string[];
  loadBalancerSourceRanges: string[];
  /** loadBalancerIngressIPs are status.loadBalancer.ingress[].ip, as a cloud's controller wrote them. */
  loadBalancerIngressIPs: string[];
  allocateLoadBalancerNodePorts: boolean;
  trafficDistribution?: string;
  publishNotReadyAddresses: boolean;
  source: ManifestObject;
}

export interface ContainerPortSpec {
  name?: string;
  containerPort: number;
  protocol: Protocol;
}

export type WorkloadKind = 'Pod' | 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'ReplicationController';

/** WorkloadSpec is anything that makes pods: Pod (1 replica), Deployment, ReplicaSet, StatefulSet, DaemonSet (one per node), ReplicationController. */
export interface WorkloadSpec {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  replicas: number;
  podLabels: Record<string, string>;
  ports: ContainerPortSpec[];
  /** nodeName pins the pods to a node (spec.nodeName). */
  nodeName?: string;
  /** readinessDelayMs is the longest readinessProbe.initialDelaySeconds of the pod's containers, in ms. */
  readinessDelayMs: number;
  /** template is the pod template as written: its hash names the pods, as pod-template-hash does. */
  template: unknown;
  source: ManifestObject;
}

/** EndpointSliceSpec merges EndpointSlice and the older Endpoints: addresses and ports for a selector-less Service. */
export interface EndpointSliceSpec {
  namespace: string;
  serviceName: string;
  ports: { name: string; port: number; protocol: Protocol }[];
  /** endpoints carry the slice's conditions as kube-proxy reads them: ready and serving default to true, terminating to false. */
  endpoints: { address: string; ready: boolean; serving: boolean; terminating: boolean; nodeName?: string }[];
  source: ManifestObject;
}

/** Manifests is everything read from -f, validated and defaulted. */
export interface Manifests {
  services: ServiceSpec[];
  workloads: WorkloadSpec[];
  endpointSlices: EndpointSliceSpec[];
  /** notes are harmless remarks (ignored kinds); warnings deserve attention (skipped SCTP ports). */
  notes: string[];
  warnings: string[];
}

export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

// validate.ts — decode, default, allocate and validate each object as the API server would, in its order of work,
// collecting every problem; a valid object becomes the typed spec the model reads.
import type { ManifestObject } from './documents.js';
import { isDNS1035Label, isDNS1123Subdomain } from './k8s-rules.js';
import type { Manifests, Protocol, ServiceSpec, ServiceType } from './objects.js';
import type { Problem } from './problems.js';
import { WORKLOAD_KINDS, decode, endpointSliceSchema, endpointsSchema, podSchema, serviceSchema, workloadSchema, type Schema } from './schema.js';
import { ServiceAllocators, type ClusterConfig } from './service-allocation.js';
import { readService, type ServiceObject } from './service-defaults.js';
import { validateEndpointSlice, validateEndpoints } from './validate-endpoints.js';
import { validateObjectMeta, type Report } from './validate-meta.js';
import { validateService } from './validate-service.js';
import { validateWorkload } from './validate-workload.js';

export type ValidateOptions = ClusterConfig;

const READ_KINDS = ['Service', 'Pod', ...WORKLOAD_KINDS, 'EndpointSlice', 'Endpoints'];

function schemaFor(kind: string): Schema | undefined {
  if (kind === 'Service') return serviceSchema;
  if (kind === 'Pod') return podSchema;
  if (kind === 'EndpointSlice') return endpointSliceSchema;
  if (kind === 'Endpoints') return endpointsSchema;
  return workloadSchema(kind);
}

function version(obj: ManifestObject): string {
  const v = obj.apiVersion.split('/');
  return v[v.length - 1] ?? obj.apiVersion;
}

/**
 * validateObjects turns parsed objects into Manifests, or reports every problem found in them. Each object goes as
 * the API server takes a create: strict decoding (stop on error), defaults, then for a Service the allocation of its
 * IPs and ports (stop on error, with the allocator's words), then validation with every error it finds.
 */
export function validateObjects(objects: ManifestObject[], options: ValidateOptions): { manifests: Manifests; problems: Problem[] } {
  const problems: Problem[] = [];
  const manifests: Manifests = { services: [], workloads: [], endpointSlices: [], notes: [], warnings: [] };
  const allocators = new ServiceAllocators(options);

  // kubectl apply -f applies objects in order, so a later object of the same kind and name replaces an earlier one.
  const kept = new Map<string, { source: ManifestObject; index: number }>();
  const replace = <T extends { source: ManifestObject }>(list: T[], item: T): void => {
    const key = `${item.source.kind}/${item.source.namespace}/${item.source.name}`;
    const earlier = kept.get(key);
    if (earlier) {
      // Positions are looked up only here: finding one may mean parsing the file again.
      manifests.notes.push(`${earlier.source.at([])}: ${item.source.kind} "${item.source.namespace}/${item.source.name}" is given again at ${item.source.at([])}; the later one is used, as kubectl apply would`);
      list[earlier.index] = item;
    } else list.push(item);
    kept.set(key, { source: item.source, index: earlier?.index ?? list.length - 1 });
  };

  for (const obj of objects) {
    const schema = schemaFor(obj.kind);
    if (!schema) {
      const near = READ_KINDS.find((k) => k.toLowerCase() === obj.kind.toLowerCase() || editDistance(k.toLowerCase(), obj.kind.toLowerCase()) <= 2);
      manifests.notes.push(`${obj.at(['kind'])}: kind "${obj.kind}" is not read${near ? ` (did you mean "${near}"?)` : ''}: ${obj.kind} "${obj.name}" is skipped; portlab reads ${READ_KINDS.join(', ')}`);
      continue;
    }
    const decodeErrors = decode(obj.data, schema);
    if (decodeErrors.length > 0) {
      const prefix = `${obj.kind} in version "${version(obj)}" cannot be handled as a ${obj.kind}: `;
      for (const e of decodeErrors.filter((d) => !d.unknownField)) problems.push({ where: obj.at(e.path), message: prefix + e.message });
      for (const e of decodeErrors.filter((d) => d.unknownField)) problems.push({ where: obj.atKey(e.path), message: `${prefix}strict decoding error: ${e.message}` });
      continue; // the API server stops at decoding; field validation would only repeat the same fault
    }
    const own: Problem[] = [];
    const report: Report = (path, message, key) => own.push({ where: key ? obj.atKey(path) : obj.at(path), message: `The ${obj.kind} "${obj.name}" is invalid: ${message}` });
    if (obj.kind === 'Service') {
      const svc = readService(obj);
      const { errors, reservation } = allocators.allocate(svc);
      for (const e of errors) {
        own.push({ where: obj.at(e.path), message: e.internal ? `Internal error occurred: ${e.message}` : `The Service "${obj.name}" is invalid: ${e.message}`, context: e.hint ? [`(${e.hint})`] : undefined });
      }
      if (reservation) {
        validateObjectMeta(obj, isDNS1035Label, report);
        validateService(svc, report);
        if (own.length === 0) {
          allocators.commit(svc, reservation);
          replace(manifests.services, serviceSpec(obj, svc, manifests));
        }
      }
    } else {
      validateObjectMeta(obj, isDNS1123Subdomain, report);
      if (obj.kind === 'EndpointSlice') {
        const slice = validateEndpointSlice(obj, report);
        if (own.length === 0) replace(manifests.endpointSlices, slice);
      } else if (obj.kind === 'Endpoints') {
        const slices = validateEndpoints(obj, report);
        if (own.length === 0) manifests.endpointSlices.push(...slices);
      } else {
        const w = validateWorkload(obj, report);
        if (own.length === 0) replace(manifests.workloads, w);
      }
    }
    problems.push(...own);
  }
  return { manifests, problems };
}

/** serviceSpec is what the model reads of a created Service; portlab's own remarks on it become warnings. */
function serviceSpec(obj: ManifestObject, svc: ServiceObject, manifests: Manifests): ServiceSpec {
  if (svc.inferredType) {
    // The seed omits `type` but sets nodePorts. The API server would reject that; its intent is plain, so portlab
    // reads it as NodePort and says so, instead of refusing the example everyone starts from.
    manifests.warnings.push(
      `${obj.at(['spec'])}: Service "${obj.name}" sets nodePort but not spec.type; treating it as type: NodePort (the API server would answer "nodePort: Forbidden: may not be used when \`type\` is 'ClusterIP'"; add \`type: NodePort\` to apply it to a cluster)`,
    );
  }
  svc.ports.forEach((p, i) => {
    if (p.protocol === 'SCTP') manifests.warnings.push(`${obj.at(['spec', 'ports', i])}: ${obj.namespace}/${obj.name} port ${p.name || p.port}/SCTP is skipped by the userspace proxy (Node.js has no SCTP sockets); \`portlab rules\` and the kernel modes include it`);
  });
  const headless = svc.clusterIP === 'None';
  return {
    namespace: obj.namespace,
    name: obj.name,
    type: svc.type as ServiceType,
    headless,
    requestedClusterIP: svc.clusterIP && !headless ? svc.clusterIP : undefined,
    requestedClusterIPs: headless ? [] : svc.clusterIPs,
    ipFamilies: svc.ipFamilies,
    selector: svc.selector && Object.keys(svc.selector).length > 0 ? svc.selector : undefined,
    ports: svc.ports.map((p, index) => ({ index, name: p.name, protocol: p.protocol as Protocol, appProtocol: p.appProtocol, port: p.port, targetPort: p.targetPort, nodePort: p.nodePort || undefined })),
    sessionAffinity: svc.sessionAffinity as 'None' | 'ClientIP',
    affinityTimeoutSeconds: svc.affinityTimeoutSeconds ?? 0,
    externalTrafficPolicy: (svc.externalTrafficPolicy || 'Cluster') as 'Cluster' | 'Local',
    internalTrafficPolicy: (svc.internalTrafficPolicy ?? 'Cluster') as 'Cluster' | 'Local',
    healthCheckNodePort: svc.healthCheckNodePort || undefined,
    externalName: svc.type === 'ExternalName' ? svc.externalName : undefined,
    externalIPs: svc.externalIPs,
    loadBalancerSourceRanges: svc.loadBalancerSourceRanges.map((r) => r.trim()),
    loadBalancerIngressIPs: svc.ingressIPs,
    allocateLoadBalancerNodePorts: svc.allocateLoadBalancerNodePorts !== false,
    trafficDistribution: svc.trafficDistribution,
    publishNotReadyAddresses: svc.publishNotReadyAddresses,
    source: obj,
  };
}

/** editDistance is Levenshtein's, to suggest "Service" for "Servic". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length]!;
}


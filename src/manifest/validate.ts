// validate.ts — decode, default and validate each object as the API server would, collecting every problem.
import type { FieldPath, ManifestObject } from './documents.js';
import { isPlainObject } from './documents.js';
import { WORKLOAD_KINDS, decode, endpointSliceSchema, endpointsSchema, podSchema, renderPath, serviceSchema, workloadSchema, type Schema } from './schema.js';
import { fieldError, isDNS1035Label, isDNS1123Label, isDNS1123Subdomain, isValidPortName, isValidPortNum } from './k8s-rules.js';
import type { Problem } from './problems.js';
import type { ContainerPortSpec, EndpointSliceSpec, Manifests, Protocol, ServicePortSpec, ServiceSpec, ServiceType, WorkloadKind, WorkloadSpec } from './objects.js';

export interface ValidateOptions {
  /** nodePortRange is the API server's --service-node-port-range. */
  nodePortRange: [number, number];
}

const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];
const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const READ_KINDS = ['Service', 'Pod', ...WORKLOAD_KINDS, 'EndpointSlice', 'Endpoints'];
const MAX_AFFINITY_TIMEOUT = 86400;

type Report = (path: FieldPath, message: string) => void;

/** validateObjects turns parsed objects into Manifests, or reports every problem found in them. */
export function validateObjects(objects: ManifestObject[], options: ValidateOptions): { manifests: Manifests; problems: Problem[] } {
  const problems: Problem[] = [];
  const manifests: Manifests = { services: [], workloads: [], endpointSlices: [], notes: [], warnings: [] };

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
      const typeErrors = decodeErrors.filter((e) => !e.unknownField);
      for (const e of typeErrors) {
        problems.push({ where: obj.at(e.path), message: `${obj.kind} in version "${version(obj)}" cannot be handled as a ${obj.kind}: ${e.message}` });
      }
      const unknown = decodeErrors.filter((e) => e.unknownField);
      for (const e of unknown) {
        problems.push({ where: obj.atKey(e.path), message: `${obj.kind} in version "${version(obj)}" cannot be handled as a ${obj.kind}: strict decoding error: ${e.message}` });
      }
      continue; // the API server stops at decoding; field validation would only repeat the same fault
    }
    const own: Problem[] = [];
    const report: Report = (path, message) => own.push({ where: obj.at(path), message: `The ${obj.kind} "${obj.name}" is invalid: ${message}` });
    validateMeta(obj, report);
    if (obj.kind === 'Service') {
      const svc = validateService(obj, report, manifests);
      if (svc && own.length === 0) replace(manifests.services, svc);
    } else if (obj.kind === 'EndpointSlice') {
      const slice = validateEndpointSlice(obj, report);
      if (own.length === 0) replace(manifests.endpointSlices, slice);
    } else if (obj.kind === 'Endpoints') {
      const slices = validateEndpoints(obj, report);
      if (own.length === 0) for (const slice of slices) manifests.endpointSlices.push(slice);
    } else {
      const w = validateWorkload(obj, report);
      if (own.length === 0) replace(manifests.workloads, w);
    }
    problems.push(...own);
  }

  if (problems.length === 0) checkRequestedNodePorts(manifests.services, options, problems);
  return { manifests, problems };
}

function schemaFor(kind: string): Schema | undefined {
  if (kind === 'Service') return serviceSchema;
  if (kind === 'Pod') return podSchema;
  const workload = workloadSchema(kind);
  if (workload) return workload;
  if (kind === 'EndpointSlice') return endpointSliceSchema;
  if (kind === 'Endpoints') return endpointsSchema;
  return undefined;
}

function version(obj: ManifestObject): string {
  const v = obj.apiVersion.split('/');
  return v[v.length - 1] ?? obj.apiVersion;
}

function get(o: unknown, ...path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function validateMeta(obj: ManifestObject, report: Report): void {
  const name = get(obj.data, 'metadata', 'name');
  if (typeof name !== 'string' || name === '') {
    report(['metadata'], fieldError.required('metadata.name', 'name or generateName is required'));
  } else {
    const rule = obj.kind === 'Service' ? isDNS1035Label : isDNS1123Subdomain;
    for (const msg of rule(name)) report(['metadata', 'name'], fieldError.invalid('metadata.name', name, msg));
  }
  const ns = get(obj.data, 'metadata', 'namespace');
  if (typeof ns === 'string' && ns !== '') {
    for (const msg of isDNS1123Label(ns)) report(['metadata', 'namespace'], fieldError.invalid('metadata.namespace', ns, msg));
  }
}

function validateService(obj: ManifestObject, report: Report, manifests: Manifests): ServiceSpec | undefined {
  const spec = (get(obj.data, 'spec') ?? {}) as Record<string, unknown>;
  const rawPorts = (spec.ports ?? []) as Record<string, unknown>[];
  let type = (spec.type ?? 'ClusterIP') as string;
  if (spec.type === undefined && rawPorts.some((p) => isPlainObject(p) && typeof p.nodePort === 'number' && p.nodePort !== 0)) {
    // The seed omits `type` but sets nodePorts. The API server would reject that; its intent is plain, so portlab
    // reads it as NodePort and says so, instead of refusing the example everyone starts from.
    type = 'NodePort';
    manifests.warnings.push(
      `${obj.at(['spec'])}: Service "${obj.name}" sets nodePort but not spec.type; treating it as type: NodePort (the API server would answer "nodePort: Forbidden: may not be used when \`type\` is 'ClusterIP'"; add \`type: NodePort\` to apply it to a cluster)`,
    );
  }
  if (!SERVICE_TYPES.includes(type)) report(['spec', 'type'], fieldError.notSupported('spec.type', type, SERVICE_TYPES));
  const clusterIP = spec.clusterIP as string | undefined;
  const headless = clusterIP === 'None';

  if (type === 'ExternalName') {
    const externalName = spec.externalName as string | undefined;
    if (!externalName) report(['spec'], fieldError.required('spec.externalName'));
  } else if (rawPorts.length === 0 && !headless) {
    report(['spec'], fieldError.required('spec.ports'));
  }
  if (headless && (type === 'NodePort' || type === 'LoadBalancer')) {
    report(['spec', 'clusterIP'], fieldError.invalid('spec.clusterIP', 'None', `may not be set to 'None' for ${type} services`));
  }

  const ports: ServicePortSpec[] = [];
  const names = new Set<string>();
  rawPorts.forEach((raw, i) => {
    const at = (f: string) => ['spec', 'ports', i, f] as FieldPath;
    const field = (f: string) => `spec.ports[${i}].${f}`;
    const name = (raw.name ?? '') as string;
    if (rawPorts.length > 1 && name === '') report(['spec', 'ports', i], fieldError.required(field('name')));
    if (name !== '') {
      for (const msg of isDNS1123Label(name)) report(at('name'), fieldError.invalid(field('name'), name, msg));
      if (names.has(name)) report(at('name'), fieldError.duplicate(field('name'), name));
      names.add(name);
    }
    const protocol = (raw.protocol ?? 'TCP') as string;
    if (!PROTOCOLS.includes(protocol)) report(at('protocol'), fieldError.notSupported(field('protocol'), protocol, PROTOCOLS));
    const port = (raw.port ?? 0) as number;
    for (const msg of isValidPortNum(port)) report(raw.port === undefined ? ['spec', 'ports', i] : at('port'), fieldError.invalid(field('port'), port, msg));
    let targetPort = raw.targetPort as number | string | undefined;
    if (targetPort === undefined || targetPort === 0 || targetPort === '') targetPort = port;
    if (typeof targetPort === 'number') {
      for (const msg of isValidPortNum(targetPort)) report(at('targetPort'), fieldError.invalid(field('targetPort'), targetPort, msg));
    } else {
      for (const msg of isValidPortName(targetPort)) report(at('targetPort'), fieldError.invalid(field('targetPort'), targetPort, msg));
    }
    const nodePort = raw.nodePort as number | undefined;
    if (nodePort !== undefined && nodePort !== 0) {
      if (type === 'ClusterIP') report(at('nodePort'), fieldError.forbidden(field('nodePort'), "may not be used when `type` is 'ClusterIP'"));
      else if (type === 'ExternalName') report(at('nodePort'), fieldError.forbidden(field('nodePort'), "may not be used when `type` is 'ExternalName'"));
      else for (const msg of isValidPortNum(nodePort)) report(at('nodePort'), fieldError.invalid(field('nodePort'), nodePort, msg));
    }
    ports.push({
      index: i,
      name,
      protocol: protocol as Protocol,
      appProtocol: raw.appProtocol as string | undefined,
      port,
      targetPort,
      nodePort: nodePort || undefined,
    });
  });

  // Duplicates count (protocol, port) pairs, so TCP and UDP may share a port and a nodePort, as the API server allows.
  const seenNodePorts = new Set<string>();
  const seenPorts = new Set<string>();
  for (const p of ports) {
    if (p.nodePort) {
      const key = `${p.protocol}/${p.nodePort}`;
      if (seenNodePorts.has(key)) report(['spec', 'ports', p.index, 'nodePort'], fieldError.duplicate(`spec.ports[${p.index}].nodePort`, p.nodePort));
      seenNodePorts.add(key);
    }
    const key = `${p.protocol}/${p.port}`;
    if (seenPorts.has(key)) {
      report(
        ['spec', 'ports', p.index],
        fieldError.duplicate(
          `spec.ports[${p.index}]`,
          `core.ServicePort{Name:"", Protocol:"${p.protocol}", AppProtocol:(*string)(nil), Port:${p.port}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
        ),
      );
    }
    seenPorts.add(key);
  }

  const sessionAffinity = (spec.sessionAffinity ?? 'None') as string;
  if (!['ClientIP', 'None'].includes(sessionAffinity)) report(['spec', 'sessionAffinity'], fieldError.notSupported('spec.sessionAffinity', sessionAffinity, ['ClientIP', 'None']));
  const timeout = get(spec, 'sessionAffinityConfig', 'clientIP', 'timeoutSeconds') as number | undefined;
  if (timeout !== undefined && (timeout <= 0 || timeout > MAX_AFFINITY_TIMEOUT)) {
    report(
      ['spec', 'sessionAffinityConfig', 'clientIP', 'timeoutSeconds'],
      fieldError.invalid('spec.sessionAffinityConfig.clientIP.timeoutSeconds', timeout, `must be greater than 0 and less than ${MAX_AFFINITY_TIMEOUT}`),
    );
  }
  const etp = (spec.externalTrafficPolicy ?? 'Cluster') as string;
  if (!['Cluster', 'Local'].includes(etp)) report(['spec', 'externalTrafficPolicy'], fieldError.notSupported('spec.externalTrafficPolicy', etp, ['Cluster', 'Local']));
  if (spec.externalTrafficPolicy !== undefined && (type === 'ClusterIP' || type === 'ExternalName')) {
    report(['spec', 'externalTrafficPolicy'], fieldError.invalid('spec.externalTrafficPolicy', etp, 'may only be set when `type` is \'NodePort\' or \'LoadBalancer\''));
  }
  const itp = (spec.internalTrafficPolicy ?? 'Cluster') as string;
  if (!['Cluster', 'Local'].includes(itp)) report(['spec', 'internalTrafficPolicy'], fieldError.notSupported('spec.internalTrafficPolicy', itp, ['Cluster', 'Local']));
  const hcnp = spec.healthCheckNodePort as number | undefined;
  if (hcnp !== undefined && hcnp !== 0 && !(type === 'LoadBalancer' && etp === 'Local')) {
    report(['spec', 'healthCheckNodePort'], fieldError.invalid('spec.healthCheckNodePort', hcnp, 'may only be set when `type` is \'LoadBalancer\' and `externalTrafficPolicy` is \'Local\''));
  }
  const selector = spec.selector as Record<string, string> | undefined;

  for (const p of ports) {
    if (p.protocol === 'SCTP') {
      manifests.warnings.push(`${obj.at(['spec', 'ports', p.index])}: ${obj.namespace}/${obj.name} port ${p.name || p.port}/SCTP is skipped: Node.js has no SCTP sockets`);
    }
  }

  return {
    namespace: obj.namespace,
    name: obj.name,
    type: type as ServiceType,
    headless,
    requestedClusterIP: clusterIP && clusterIP !== 'None' ? clusterIP : undefined,
    selector: selector && Object.keys(selector).length > 0 ? selector : undefined,
    ports,
    sessionAffinity: sessionAffinity as 'None' | 'ClientIP',
    affinityTimeoutSeconds: timeout ?? 10800,
    externalTrafficPolicy: etp as 'Cluster' | 'Local',
    internalTrafficPolicy: itp as 'Cluster' | 'Local',
    healthCheckNodePort: hcnp || undefined,
    externalName: spec.externalName as string | undefined,
    source: obj,
  };
}

function validateContainerPorts(podSpec: unknown, base: FieldPath, report: Report): ContainerPortSpec[] {
  const ports: ContainerPortSpec[] = [];
  const containers = (get(podSpec, 'containers') ?? []) as Record<string, unknown>[];
  const basePath = renderPath(base);
  if (containers.length === 0) report(base, fieldError.required(`${basePath}.containers`));
  containers.forEach((c, ci) => {
    const cps = (c.ports ?? []) as Record<string, unknown>[];
    cps.forEach((cp, pi) => {
      const at = [...base, 'containers', ci, 'ports', pi];
      const field = `${basePath}.containers[${ci}].ports[${pi}]`;
      const containerPort = (cp.containerPort ?? 0) as number;
      for (const msg of isValidPortNum(containerPort)) report([...at, 'containerPort'], fieldError.invalid(`${field}.containerPort`, containerPort, msg));
      const name = cp.name as string | undefined;
      if (name !== undefined && name !== '') for (const msg of isValidPortName(name)) report([...at, 'name'], fieldError.invalid(`${field}.name`, name, msg));
      const protocol = (cp.protocol ?? 'TCP') as string;
      if (!PROTOCOLS.includes(protocol)) report([...at, 'protocol'], fieldError.notSupported(`${field}.protocol`, protocol, PROTOCOLS));
      ports.push({ name: name || undefined, containerPort, protocol: protocol as Protocol });
    });
  });
  return ports;
}

/** readinessDelayMs is the longest readinessProbe.initialDelaySeconds among the pod's containers, in ms. */
function readinessDelayMs(podSpec: unknown): number {
  const containers = (get(podSpec, 'containers') ?? []) as Record<string, unknown>[];
  return Math.max(0, ...containers.map((c) => Number(get(c, 'readinessProbe', 'initialDelaySeconds') ?? 0) * 1000));
}

interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

/** selectorMatches evaluates a LabelSelector (matchLabels and matchExpressions) against labels. */
function selectorMatches(matchLabels: Record<string, string>, expressions: Requirement[], labels: Record<string, string>): boolean {
  if (!Object.entries(matchLabels).every(([k, v]) => labels[k] === v)) return false;
  return expressions.every((e) => {
    const has = Object.hasOwn(labels, e.key);
    switch (e.operator) {
      case 'In':
        return has && (e.values ?? []).includes(labels[e.key]!);
      case 'NotIn':
        return !has || !(e.values ?? []).includes(labels[e.key]!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      default:
        return false;
    }
  });
}

function validateWorkload(obj: ManifestObject, report: Report): WorkloadSpec {
  const kind = obj.kind as WorkloadKind;
  const base = { kind, namespace: obj.namespace, name: obj.name, source: obj };
  if (kind === 'Pod') {
    const spec = get(obj.data, 'spec');
    const ports = validateContainerPorts(spec, ['spec'], report);
    const labels = (get(obj.data, 'metadata', 'labels') ?? {}) as Record<string, string>;
    return { ...base, replicas: 1, podLabels: labels, ports, nodeName: get(spec, 'nodeName') as string | undefined, readinessDelayMs: readinessDelayMs(spec), template: spec };
  }
  const spec = get(obj.data, 'spec') ?? {};
  const replicas = kind === 'DaemonSet' ? 1 : ((get(spec, 'replicas') ?? 1) as number);
  if (replicas < 0) report(['spec', 'replicas'], fieldError.invalid('spec.replicas', replicas, 'must be greater than or equal to 0'));
  const labels = (get(spec, 'template', 'metadata', 'labels') ?? {}) as Record<string, string>;
  if (kind === 'ReplicationController') {
    // SetDefaults_ReplicationController: an empty selector becomes the template's labels.
    const selector = (get(spec, 'selector') ?? {}) as Record<string, string>;
    if (Object.keys(selector).length > 0 && !selectorMatches(selector, [], labels)) {
      report(['spec', 'template', 'metadata', 'labels'], fieldError.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
    }
  } else {
    const matchLabels = (get(spec, 'selector', 'matchLabels') ?? {}) as Record<string, string>;
    const expressions = (get(spec, 'selector', 'matchExpressions') ?? []) as Requirement[];
    if (Object.keys(matchLabels).length === 0 && expressions.length === 0) {
      report(['spec'], fieldError.required('spec.selector'));
    } else if (!selectorMatches(matchLabels, Array.isArray(expressions) ? expressions : [], labels)) {
      report(['spec', 'template', 'metadata', 'labels'], fieldError.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
    }
  }
  const podSpec = get(spec, 'template', 'spec');
  const ports = validateContainerPorts(podSpec, ['spec', 'template', 'spec'], report);
  return { ...base, replicas, podLabels: labels, ports, nodeName: get(podSpec, 'nodeName') as string | undefined, readinessDelayMs: readinessDelayMs(podSpec), template: get(spec, 'template') };
}

function validateSlicePorts(raw: Record<string, unknown>[], base: FieldPath, report: Report): EndpointSliceSpec['ports'] {
  return raw.map((p, i) => {
    const field = `${renderPath(base)}[${i}]`;
    const port = (p.port ?? 0) as number;
    for (const msg of isValidPortNum(port)) report([...base, i, 'port'], fieldError.invalid(`${field}.port`, port, msg));
    const protocol = (p.protocol ?? 'TCP') as string;
    if (!PROTOCOLS.includes(protocol)) report([...base, i, 'protocol'], fieldError.notSupported(`${field}.protocol`, protocol, PROTOCOLS));
    return { name: (p.name ?? '') as string, port, protocol: protocol as Protocol };
  });
}

function validateEndpointSlice(obj: ManifestObject, report: Report): EndpointSliceSpec {
  const serviceName = get(obj.data, 'metadata', 'labels', 'kubernetes.io/service-name') as string | undefined;
  if (!serviceName) report(['metadata'], fieldError.required('metadata.labels[kubernetes.io/service-name]', 'portlab needs this label to know which Service the slice belongs to'));
  const addressType = (get(obj.data, 'addressType') ?? '') as string;
  if (!['IPv4', 'IPv6', 'FQDN'].includes(addressType)) report(['addressType'], fieldError.notSupported('addressType', addressType, ['FQDN', 'IPv4', 'IPv6']));
  const ports = validateSlicePorts((get(obj.data, 'ports') ?? []) as Record<string, unknown>[], ['ports'], report);
  const endpoints: EndpointSliceSpec['endpoints'] = [];
  ((get(obj.data, 'endpoints') ?? []) as Record<string, unknown>[]).forEach((e, i) => {
    const addresses = (e.addresses ?? []) as string[];
    if (addresses.length === 0) report(['endpoints', i], fieldError.required(`endpoints[${i}].addresses`));
    addresses.forEach((a, j) => {
      if (addressType === 'IPv4' && !isIPv4(a)) report(['endpoints', i, 'addresses', j], fieldError.invalid(`endpoints[${i}].addresses[${j}]`, a, 'must be a valid IPv4 address'));
    });
    const ready = get(e, 'conditions', 'ready');
    endpoints.push({ address: addresses[0] ?? '', ready: ready !== false, nodeName: e.nodeName as string | undefined });
  });
  return { namespace: obj.namespace, serviceName: serviceName ?? '', ports, endpoints, source: obj };
}

/** validateEndpoints reads the older Endpoints kind: each subset pairs its own addresses with its own ports. */
function validateEndpoints(obj: ManifestObject, report: Report): EndpointSliceSpec[] {
  const subsets = (get(obj.data, 'subsets') ?? []) as Record<string, unknown>[];
  return subsets.map((s, i) => {
    const ports = validateSlicePorts((s.ports ?? []) as Record<string, unknown>[], ['subsets', i, 'ports'], report);
    const endpoints: EndpointSliceSpec['endpoints'] = [];
    for (const [key, ready] of [['addresses', true], ['notReadyAddresses', false]] as const) {
      ((s[key] ?? []) as Record<string, unknown>[]).forEach((a, j) => {
        const ip = (a.ip ?? '') as string;
        if (!isIPv4(ip)) report(['subsets', i, key, j], fieldError.invalid(`subsets[${i}].${key}[${j}].ip`, ip, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'));
        endpoints.push({ address: ip, ready, nodeName: a.nodeName as string | undefined });
      });
    }
    return { namespace: obj.namespace, serviceName: obj.name, ports, endpoints, source: obj };
  });
}

export function isIPv4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  return !!m && m.slice(1).every((x) => Number(x) <= 255 && String(Number(x)) === x);
}

/**
 * checkRequestedNodePorts checks the nodePorts the manifests ask for, as the API server's allocator does before it
 * validates: in range, and not held by another Service. Ports left out are allocated by the model.
 */
function checkRequestedNodePorts(services: ServiceSpec[], options: ValidateOptions, problems: Problem[]): void {
  const [lo, hi] = options.nodePortRange;
  const owner = new Map<number, string>();
  for (const svc of services) {
    const me = `${svc.namespace}/${svc.name}`;
    for (const p of svc.ports) {
      if (p.nodePort === undefined) continue;
      const field = `spec.ports[${p.index}].nodePort`;
      // Positions are looked up only for a problem: finding one may mean parsing the file again.
      const where = () => svc.source.at(['spec', 'ports', p.index, 'nodePort']);
      const prefix = `The Service "${svc.name}" is invalid: `;
      if (p.nodePort < lo || p.nodePort > hi) {
        problems.push({ where: where(), message: prefix + fieldError.invalid(field, p.nodePort, `provided port is not in the valid range. The range of valid ports is ${lo}-${hi}`) });
      } else if (owner.has(p.nodePort) && owner.get(p.nodePort) !== me) {
        problems.push({ where: where(), message: prefix + fieldError.invalid(field, p.nodePort, `provided port is already allocated (by Service "${owner.get(p.nodePort)}")`) });
      }
      owner.set(p.nodePort, me);
    }
    if (svc.healthCheckNodePort !== undefined) owner.set(svc.healthCheckNodePort, me);
  }
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

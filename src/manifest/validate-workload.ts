// validate-workload.ts — the fields of Pods and pod controllers that portlab reads, validated as the API server does:
// replicas, the selector against the template's labels, container ports, readiness probe delays.
import { isPlainObject, type FieldPath, type ManifestObject } from './documents.js';
import { fieldError, isValidPortName, isValidPortNum } from './k8s-rules.js';
import type { ContainerPortSpec, Protocol, WorkloadKind, WorkloadSpec } from './objects.js';
import { renderPath } from './schema.js';
import type { Report } from './validate-meta.js';
import { PROTOCOLS } from './validate-service.js';

function get(o: unknown, ...path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(isPlainObject) : []);

/** validateContainers is validateContainerPorts per container, and the readiness probe's delay, for the pod spec at base. */
function validateContainers(podSpec: unknown, base: FieldPath, report: Report): ContainerPortSpec[] {
  const ports: ContainerPortSpec[] = [];
  const containers = list(get(podSpec, 'containers'));
  const basePath = renderPath(base);
  if (containers.length === 0) report(base, fieldError.required(`${basePath}.containers`));
  containers.forEach((c, ci) => {
    const names = new Set<string>();
    list(c.ports).forEach((cp, pi) => {
      const at = [...base, 'containers', ci, 'ports', pi];
      const field = `${basePath}.containers[${ci}].ports[${pi}]`;
      const name = typeof cp.name === 'string' ? cp.name : '';
      if (name !== '') {
        const msgs = isValidPortName(name);
        for (const msg of msgs) report([...at, 'name'], fieldError.invalid(`${field}.name`, name, msg));
        if (msgs.length === 0 && names.has(name)) report([...at, 'name'], fieldError.duplicate(`${field}.name`, name));
        names.add(name);
      }
      const containerPort = typeof cp.containerPort === 'number' ? cp.containerPort : 0;
      if (containerPort === 0) report(at, fieldError.required(`${field}.containerPort`));
      else for (const msg of isValidPortNum(containerPort)) report([...at, 'containerPort'], fieldError.invalid(`${field}.containerPort`, containerPort, msg));
      const hostPort = typeof cp.hostPort === 'number' ? cp.hostPort : 0;
      if (hostPort !== 0) for (const msg of isValidPortNum(hostPort)) report([...at, 'hostPort'], fieldError.invalid(`${field}.hostPort`, hostPort, msg));
      const protocol = typeof cp.protocol === 'string' && cp.protocol !== '' ? cp.protocol : 'TCP';
      if (!PROTOCOLS.includes(protocol)) report([...at, 'protocol'], fieldError.notSupported(`${field}.protocol`, protocol, PROTOCOLS));
      ports.push({ name: name || undefined, containerPort, protocol: protocol as Protocol });
    });
    const delay = get(c, 'readinessProbe', 'initialDelaySeconds');
    if (typeof delay === 'number' && delay < 0) {
      report([...base, 'containers', ci, 'readinessProbe', 'initialDelaySeconds'], fieldError.invalid(`${basePath}.containers[${ci}].readinessProbe.initialDelaySeconds`, delay, 'must be greater than or equal to 0'));
    }
  });
  return ports;
}

/** readinessDelayMs is the longest readinessProbe.initialDelaySeconds among the pod's containers, in ms. */
function readinessDelayMs(podSpec: unknown): number {
  return Math.max(0, ...list(get(podSpec, 'containers')).map((c) => Number(get(c, 'readinessProbe', 'initialDelaySeconds') ?? 0) * 1000));
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

/** validateWorkload checks a Pod or a controller (the caller checks metadata) and reads what portlab needs from it. */
export function validateWorkload(obj: ManifestObject, report: Report): WorkloadSpec {
  const kind = obj.kind as WorkloadKind;
  const base = { kind, namespace: obj.namespace, name: obj.name, source: obj };
  if (kind === 'Pod') {
    const spec = get(obj.data, 'spec');
    const ports = validateContainers(spec, ['spec'], report);
    const labels = (get(obj.data, 'metadata', 'labels') ?? {}) as Record<string, string>;
    return { ...base, replicas: 1, podLabels: labels, ports, nodeName: get(spec, 'nodeName') as string | undefined, readinessDelayMs: readinessDelayMs(spec), template: spec };
  }
  const spec = get(obj.data, 'spec') ?? {};
  const replicas = kind === 'DaemonSet' ? 1 : ((get(spec, 'replicas') ?? 1) as number);
  if (replicas < 0) report(['spec', 'replicas'], fieldError.invalid('spec.replicas', replicas, 'must be greater than or equal to 0'));
  const labels = (get(spec, 'template', 'metadata', 'labels') ?? {}) as Record<string, string>;
  const mismatch = () => report(['spec', 'template', 'metadata', 'labels'], fieldError.invalid('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
  if (kind === 'ReplicationController') {
    // SetDefaults_ReplicationController: an empty selector becomes the template's labels.
    const selector = (get(spec, 'selector') ?? {}) as Record<string, string>;
    if (Object.keys(selector).length > 0 && !selectorMatches(selector, [], labels)) mismatch();
  } else {
    const matchLabels = (get(spec, 'selector', 'matchLabels') ?? {}) as Record<string, string>;
    const expressions = get(spec, 'selector', 'matchExpressions');
    const requirements = Array.isArray(expressions) ? (expressions as Requirement[]) : [];
    if (Object.keys(matchLabels).length === 0 && requirements.length === 0) report(['spec'], fieldError.required('spec.selector'));
    else if (!selectorMatches(matchLabels, requirements, labels)) mismatch();
  }
  const podSpec = get(spec, 'template', 'spec');
  const ports = validateContainers(podSpec, ['spec', 'template', 'spec'], report);
  return { ...base, replicas, podLabels: labels, ports, nodeName: get(podSpec, 'nodeName') as string | undefined, readinessDelayMs: readinessDelayMs(podSpec), template: get(spec, 'template') };
}

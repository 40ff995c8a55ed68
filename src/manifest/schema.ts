// schema.ts — the Go types the API server decodes into, so a wrong type gets kubectl's "cannot unmarshal" message.
import { describe, isPlainObject, type FieldPath } from './documents.js';

/** Schema describes the JSON shape of the fields portlab reads. Fields it does not list are passed over. */
export type Schema =
  | { t: 'string' }
  | { t: 'int32'; go?: string }
  | { t: 'bool' }
  | { t: 'intOrString' }
  | { t: 'stringMap' }
  | { t: 'any' }
  | { t: 'list'; of: Schema; go: string }
  | { t: 'struct'; go: string; fields: Record<string, Schema>; strict?: boolean };

const str: Schema = { t: 'string' };
const int32: Schema = { t: 'int32' };
const bool: Schema = { t: 'bool' };
const any: Schema = { t: 'any' };
const stringMap: Schema = { t: 'stringMap' };
const strings: Schema = { t: 'list', of: str, go: '[]string' };

/** strict makes a struct that rejects unknown fields, as the API server's strict field validation does. */
function strict(go: string, fields: Record<string, Schema>): Schema {
  return { t: 'struct', go, fields, strict: true };
}

/** known lists fields that exist but that portlab does not read: any JSON is accepted there. */
function known(...names: string[]): Record<string, Schema> {
  return Object.fromEntries(names.map((n) => [n, any]));
}

const objectMeta: Schema = strict('v1.ObjectMeta', {
  name: str,
  generateName: str,
  namespace: str,
  labels: stringMap,
  annotations: stringMap,
  ...known('selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'ownerReferences', 'finalizers', 'managedFields'),
});

/** topLevel is what every object has: apiVersion, kind, metadata, and its own spec and status. */
function topLevel(go: string, fields: Record<string, Schema>): Schema {
  return strict(go, { apiVersion: str, kind: str, metadata: objectMeta, status: any, ...fields });
}

const servicePort: Schema = strict('v1.ServicePort', { name: str, protocol: str, appProtocol: str, port: int32, targetPort: { t: 'intOrString' }, nodePort: int32 });

/** serviceSchema is v1.Service, decoded strictly, so a typo such as `nodeport` is an error, as with kubectl's default --validate=strict. */
export const serviceSchema: Schema = topLevel('v1.Service', {
  spec: strict('v1.ServiceSpec', {
    type: str,
    selector: stringMap,
    ports: { t: 'list', of: servicePort, go: '[]v1.ServicePort' },
    clusterIP: str,
    clusterIPs: strings,
    externalIPs: strings,
    externalName: str,
    sessionAffinity: str,
    sessionAffinityConfig: strict('v1.SessionAffinityConfig', { clientIP: strict('v1.ClientIPConfig', { timeoutSeconds: int32 }) }),
    externalTrafficPolicy: str,
    internalTrafficPolicy: str,
    healthCheckNodePort: int32,
    loadBalancerIP: str,
    loadBalancerClass: str,
    loadBalancerSourceRanges: strings,
    allocateLoadBalancerNodePorts: bool,
    publishNotReadyAddresses: bool,
    ipFamilies: strings,
    ipFamilyPolicy: str,
    trafficDistribution: str,
  }),
});

const containerPort: Schema = strict('v1.ContainerPort', { name: str, containerPort: int32, protocol: str, hostPort: int32, hostIP: str });
const probe: Schema = strict('v1.Probe', {
  initialDelaySeconds: int32,
  ...known('exec', 'httpGet', 'tcpSocket', 'grpc', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds'),
});
const container: Schema = strict('v1.Container', {
  name: str,
  image: str,
  ports: { t: 'list', of: containerPort, go: '[]v1.ContainerPort' },
  readinessProbe: probe,
  ...known('command', 'args', 'workingDir', 'envFrom', 'env', 'resources', 'resizePolicy', 'restartPolicy', 'restartPolicyRules', 'volumeMounts', 'volumeDevices'),
  ...known('livenessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath', 'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty'),
});
const containers: Schema = { t: 'list', of: container, go: '[]v1.Container' };
const podSpec: Schema = strict('v1.PodSpec', {
  containers,
  initContainers: containers,
  nodeName: str,
  ...known('volumes', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector'),
  ...known('serviceAccountName', 'serviceAccount', 'automountServiceAccountToken', 'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace'),
  ...known('securityContext', 'imagePullSecrets', 'hostname', 'subdomain', 'affinity', 'schedulerName', 'tolerations', 'hostAliases', 'priorityClassName'),
  ...known('priority', 'dnsConfig', 'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints'),
  ...known('setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates', 'resourceClaims', 'resources', 'hostnameOverride'),
});

/** podSchema is v1.Pod. */
export const podSchema: Schema = topLevel('v1.Pod', { spec: podSpec });

const podTemplate: Schema = strict('v1.PodTemplateSpec', { metadata: objectMeta, spec: podSpec });
const labelSelector: Schema = strict('v1.LabelSelector', { matchLabels: stringMap, matchExpressions: any });

/** workloadSchemas are the controllers' specs, field for field (apps/v1, and core/v1 for ReplicationController). */
const workloadSpecs: Record<string, Schema> = {
  Deployment: strict('v1.DeploymentSpec', {
    replicas: int32,
    selector: labelSelector,
    template: podTemplate,
    ...known('strategy', 'minReadySeconds', 'revisionHistoryLimit', 'paused', 'progressDeadlineSeconds'),
  }),
  ReplicaSet: strict('v1.ReplicaSetSpec', { replicas: int32, selector: labelSelector, template: podTemplate, ...known('minReadySeconds') }),
  StatefulSet: strict('v1.StatefulSetSpec', {
    replicas: int32,
    selector: labelSelector,
    template: podTemplate,
    ...known('volumeClaimTemplates', 'serviceName', 'podManagementPolicy', 'updateStrategy', 'revisionHistoryLimit', 'minReadySeconds', 'persistentVolumeClaimRetentionPolicy', 'ordinals'),
  }),
  DaemonSet: strict('v1.DaemonSetSpec', { selector: labelSelector, template: podTemplate, ...known('updateStrategy', 'minReadySeconds', 'revisionHistoryLimit') }),
  ReplicationController: strict('v1.ReplicationControllerSpec', { replicas: int32, selector: stringMap, template: podTemplate, ...known('minReadySeconds') }),
};

export const WORKLOAD_KINDS = Object.keys(workloadSpecs);

/** workloadSchema is a controller with its spec; undefined for a kind that is not a workload. */
export function workloadSchema(kind: string): Schema | undefined {
  const spec = workloadSpecs[kind];
  return spec && topLevel(`v1.${kind}`, { spec });
}

const endpointPort: Schema = strict('v1.EndpointPort', { name: str, port: int32, protocol: str, appProtocol: str });
const endpointConditions: Schema = strict('v1.EndpointConditions', { ready: bool, serving: bool, terminating: bool });

export const endpointSliceSchema: Schema = topLevel('v1.EndpointSlice', {
  addressType: str,
  endpoints: {
    t: 'list',
    go: '[]v1.Endpoint',
    of: strict('v1.Endpoint', { addresses: strings, nodeName: str, conditions: endpointConditions, ...known('hostname', 'targetRef', 'zone', 'hints', 'deprecatedTopology') }),
  },
  ports: { t: 'list', of: endpointPort, go: '[]v1.EndpointPort' },
});

const endpointAddress: Schema = strict('v1.EndpointAddress', { ip: str, nodeName: str, hostname: str, ...known('targetRef') });
export const endpointsSchema: Schema = topLevel('v1.Endpoints', {
  subsets: {
    t: 'list',
    go: '[]v1.EndpointSubset',
    of: strict('v1.EndpointSubset', {
      addresses: { t: 'list', of: endpointAddress, go: '[]v1.EndpointAddress' },
      notReadyAddresses: { t: 'list', of: endpointAddress, go: '[]v1.EndpointAddress' },
      ports: { t: 'list', of: endpointPort, go: '[]v1.EndpointPort' },
    }),
  },
});

/** DecodeError is one field whose JSON type does not fit, or an unknown field in a strict struct. */
export interface DecodeError {
  path: FieldPath;
  message: string;
  unknownField?: boolean;
}

/** decode checks value against schema and returns every mismatch, in Go's encoding/json wording. */
export function decode(value: unknown, schema: Schema): DecodeError[] {
  const errors: DecodeError[] = [];
  walk(value, schema, [], '', '', errors);
  return errors;
}

function goTypeOf(schema: Schema): string {
  switch (schema.t) {
    case 'string':
      return 'string';
    case 'int32':
      return schema.go ?? 'int32';
    case 'bool':
      return 'bool';
    case 'intOrString':
      return 'intstr.IntOrString';
    case 'stringMap':
      return 'map[string]string';
    case 'any':
      return 'interface {}';
    case 'list':
      return schema.go;
    case 'struct':
      return schema.go;
  }
}

function jsonKind(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? 'number' : `number ${v}`;
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return isPlainObject(v) ? 'object' : describe(v);
}

/** walk: `owner` is the Go struct holding this field and `dotted` its JSON path without indexes, as Go prints them. */
function walk(v: unknown, schema: Schema, path: FieldPath, owner: string, dotted: string, out: DecodeError[]): void {
  if (v === null || v === undefined || schema.t === 'any') return; // null decodes to the zero value in Go
  const mismatch = (): void => {
    out.push({
      path,
      message: `json: cannot unmarshal ${jsonKind(v)} into Go ${owner ? `struct field ${owner}.${dotted}` : 'value'} of type ${goTypeOf(schema)}`,
    });
  };
  switch (schema.t) {
    case 'string':
      if (typeof v !== 'string') mismatch();
      return;
    case 'bool':
      if (typeof v !== 'boolean') mismatch();
      return;
    case 'int32':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) mismatch();
      return;
    case 'intOrString':
      if (typeof v === 'string') return;
      if (typeof v !== 'number' || !Number.isInteger(v)) mismatch();
      return;
    case 'stringMap':
      if (!isPlainObject(v)) return mismatch();
      for (const [k, item] of Object.entries(v)) {
        if (typeof item !== 'string' && item !== null) {
          out.push({ path: [...path, k], message: `json: cannot unmarshal ${jsonKind(item)} into Go struct field ${owner}.${dotted} of type string` });
        }
      }
      return;
    case 'list':
      if (!Array.isArray(v)) return mismatch();
      v.forEach((item, i) => walk(item, schema.of, [...path, i], owner, dotted, out));
      return;
    case 'struct': {
      if (!isPlainObject(v)) return mismatch();
      const structName = schema.go.replace(/^v1\./, '');
      for (const [k, item] of Object.entries(v)) {
        const field = schema.fields[k];
        if (field) walk(item, field, [...path, k], structName, dotted ? `${dotted}.${k}` : k, out);
        else if (schema.strict) out.push({ path: [...path, k], message: `unknown field "${renderPath([...path, k])}"`, unknownField: true });
      }
      return;
    }
  }
}

/** renderPath prints a field path the way the API server does: spec.ports[0].nodePort. */
export function renderPath(path: FieldPath): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

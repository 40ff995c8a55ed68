// schema.ts — the Go types the API server decodes into, so a wrong type gets kubectl's "cannot unmarshal" message.
import { describe, isPlainObject, type FieldPath } from './documents.js';

/** Schema describes the JSON shape of the fields portlab reads. Fields it does not list are passed over. */
export type Schema =
  | { t: 'string' }
  | { t: 'int32' }
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

const objectMeta: Schema = { t: 'struct', go: 'v1.ObjectMeta', fields: { name: str, namespace: str, labels: stringMap, annotations: stringMap, generateName: str } };

const servicePort: Schema = {
  t: 'struct',
  go: 'v1.ServicePort',
  strict: true,
  fields: { name: str, protocol: str, appProtocol: str, port: int32, targetPort: { t: 'intOrString' }, nodePort: int32 },
};

/** serviceSchema is v1.Service; its spec is decoded strictly, so a typo such as `nodeport` is an error, as with kubectl's default --validate=strict. */
export const serviceSchema: Schema = {
  t: 'struct',
  go: 'v1.Service',
  fields: {
    metadata: objectMeta,
    status: any,
    spec: {
      t: 'struct',
      go: 'v1.ServiceSpec',
      strict: true,
      fields: {
        type: str,
        selector: stringMap,
        ports: { t: 'list', of: servicePort, go: '[]v1.ServicePort' },
        clusterIP: str,
        clusterIPs: strings,
        externalIPs: strings,
        externalName: str,
        sessionAffinity: str,
        sessionAffinityConfig: { t: 'struct', go: 'v1.SessionAffinityConfig', fields: { clientIP: { t: 'struct', go: 'v1.ClientIPConfig', fields: { timeoutSeconds: int32 } } } },
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
      },
    },
  },
};

const containerPort: Schema = { t: 'struct', go: 'v1.ContainerPort', fields: { name: str, containerPort: int32, protocol: str, hostPort: int32, hostIP: str } };
const container: Schema = { t: 'struct', go: 'v1.Container', fields: { name: str, image: str, ports: { t: 'list', of: containerPort, go: '[]v1.ContainerPort' } } };
const podSpec: Schema = {
  t: 'struct',
  go: 'v1.PodSpec',
  fields: { containers: { t: 'list', of: container, go: '[]v1.Container' }, nodeName: str },
};

/** podSchema is v1.Pod, as far as portlab reads it. */
export const podSchema: Schema = { t: 'struct', go: 'v1.Pod', fields: { metadata: objectMeta, spec: podSpec } };

const podTemplate: Schema = { t: 'struct', go: 'v1.PodTemplateSpec', fields: { metadata: objectMeta, spec: podSpec } };
const labelSelector: Schema = { t: 'struct', go: 'v1.LabelSelector', fields: { matchLabels: stringMap } };

/** workloadSchema covers Deployment, ReplicaSet and StatefulSet: replicas, selector and the pod template. */
export function workloadSchema(kind: string): Schema {
  return {
    t: 'struct',
    go: `v1.${kind}`,
    fields: { metadata: objectMeta, spec: { t: 'struct', go: `v1.${kind}Spec`, fields: { replicas: int32, selector: labelSelector, template: podTemplate } } },
  };
}

const endpointPort: Schema = { t: 'struct', go: 'v1.EndpointPort', fields: { name: str, port: int32, protocol: str, appProtocol: str } };

export const endpointSliceSchema: Schema = {
  t: 'struct',
  go: 'v1.EndpointSlice',
  fields: {
    metadata: objectMeta,
    addressType: str,
    endpoints: {
      t: 'list',
      go: '[]v1.Endpoint',
      of: {
        t: 'struct',
        go: 'v1.Endpoint',
        fields: { addresses: strings, nodeName: str, conditions: { t: 'struct', go: 'v1.EndpointConditions', fields: { ready: bool, serving: bool, terminating: bool } } },
      },
    },
    ports: { t: 'list', of: endpointPort, go: '[]v1.EndpointPort' },
  },
};

const endpointAddress: Schema = { t: 'struct', go: 'v1.EndpointAddress', fields: { ip: str, nodeName: str, hostname: str } };
export const endpointsSchema: Schema = {
  t: 'struct',
  go: 'v1.Endpoints',
  fields: {
    metadata: objectMeta,
    subsets: {
      t: 'list',
      go: '[]v1.EndpointSubset',
      of: {
        t: 'struct',
        go: 'v1.EndpointSubset',
        fields: {
          addresses: { t: 'list', of: endpointAddress, go: '[]v1.EndpointAddress' },
          notReadyAddresses: { t: 'list', of: endpointAddress, go: '[]v1.EndpointAddress' },
          ports: { t: 'list', of: endpointPort, go: '[]v1.EndpointPort' },
        },
      },
    },
  },
};

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
      return 'int32';
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

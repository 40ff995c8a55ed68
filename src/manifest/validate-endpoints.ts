// validate-endpoints.ts — EndpointSlices and the older Endpoints, the way users point a Service without a selector
// at their own process.
import { isPlainObject, type FieldPath, type ManifestObject } from './documents.js';
import { fieldError, isDNS1123Label, isValidIP, isValidPortNum, nonSpecialIP } from './k8s-rules.js';
import type { EndpointSliceSpec, Protocol } from './objects.js';
import { renderPath } from './schema.js';
import type { Report } from './validate-meta.js';
import { PROTOCOLS } from './validate-service.js';

const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(isPlainObject) : []);

function validatePorts(raw: Record<string, unknown>[], base: FieldPath, report: Report): EndpointSliceSpec['ports'] {
  return raw.map((p, i) => {
    const field = `${renderPath(base)}[${i}]`;
    const name = typeof p.name === 'string' ? p.name : '';
    if (raw.length > 1 && name === '') report([...base, i], fieldError.required(`${field}.name`));
    else if (name !== '') for (const msg of isDNS1123Label(name)) report([...base, i, 'name'], fieldError.invalid(`${field}.name`, name, msg));
    const port = typeof p.port === 'number' ? p.port : 0;
    for (const msg of isValidPortNum(port)) report([...base, i, 'port'], fieldError.invalid(`${field}.port`, port, msg));
    const protocol = typeof p.protocol === 'string' && p.protocol !== '' ? p.protocol : 'TCP';
    if (!PROTOCOLS.includes(protocol)) report([...base, i, 'protocol'], fieldError.notSupported(`${field}.protocol`, protocol, PROTOCOLS));
    return { name, port, protocol: protocol as Protocol };
  });
}

export function validateEndpointSlice(obj: ManifestObject, report: Report): EndpointSliceSpec {
  const labels = isPlainObject(obj.data.metadata) && isPlainObject(obj.data.metadata.labels) ? obj.data.metadata.labels : {};
  const serviceName = typeof labels['kubernetes.io/service-name'] === 'string' ? labels['kubernetes.io/service-name'] : '';
  if (!serviceName) report(['metadata'], fieldError.required('metadata.labels[kubernetes.io/service-name]', 'portlab needs this label to know which Service the slice belongs to'));
  const addressType = typeof obj.data.addressType === 'string' ? obj.data.addressType : '';
  if (!['IPv4', 'IPv6', 'FQDN'].includes(addressType)) report(['addressType'], fieldError.notSupported('addressType', addressType, ['FQDN', 'IPv4', 'IPv6']));
  const ports = validatePorts(list(obj.data.ports), ['ports'], report);
  const endpoints: EndpointSliceSpec['endpoints'] = [];
  list(obj.data.endpoints).forEach((e, i) => {
    const addresses = Array.isArray(e.addresses) ? e.addresses.map(String) : [];
    if (addresses.length === 0) report(['endpoints', i], fieldError.required(`endpoints[${i}].addresses`));
    addresses.forEach((a, j) => {
      if (addressType === 'IPv4' && !/^\d{1,3}(\.\d{1,3}){3}$/.test(a)) report(['endpoints', i, 'addresses', j], fieldError.invalid(`endpoints[${i}].addresses[${j}]`, a, 'must be a valid IPv4 address'));
    });
    const conditions = isPlainObject(e.conditions) ? e.conditions : {};
    // kube-proxy uses the first address, and reads a missing condition as ready and serving, and not terminating.
    endpoints.push({
      address: addresses[0] ?? '',
      ready: conditions.ready !== false,
      serving: conditions.serving !== false,
      terminating: conditions.terminating === true,
      nodeName: typeof e.nodeName === 'string' ? e.nodeName : undefined,
    });
  });
  return { namespace: obj.namespace, serviceName, ports, endpoints, source: obj };
}

/** validateEndpoints reads the older Endpoints kind: each subset pairs its own addresses with its own ports. */
export function validateEndpoints(obj: ManifestObject, report: Report): EndpointSliceSpec[] {
  return list(obj.data.subsets).map((s, i) => {
    const ports = validatePorts(list(s.ports), ['subsets', i, 'ports'], report);
    const endpoints: EndpointSliceSpec['endpoints'] = [];
    for (const [key, ready] of [['addresses', true], ['notReadyAddresses', false]] as const) {
      list(s[key]).forEach((a, j) => {
        const ip = typeof a.ip === 'string' ? a.ip : '';
        const path: FieldPath = ['subsets', i, key, j, 'ip'];
        const msgs = isValidIP(ip);
        for (const msg of msgs) report(path, fieldError.invalid(`subsets[${i}].${key}[${j}].ip`, ip, msg));
        // ValidateNonSpecialIP would refuse a loopback endpoint; portlab's endpoints are on loopback, so it is skipped.
        if (msgs.length === 0) for (const msg of nonSpecialIP(ip).filter((m) => !m.includes('loopback'))) report(path, fieldError.invalid(`subsets[${i}].${key}[${j}].ip`, ip, msg));
        endpoints.push({ address: ip, ready, serving: ready, terminating: false, nodeName: typeof a.nodeName === 'string' ? a.nodeName : undefined });
      });
    }
    return { namespace: obj.namespace, serviceName: obj.name, ports, endpoints, source: obj };
  });
}


// validate-service.ts — ValidateService (pkg/apis/core/validation), field by field and in its order, on a Service
// that is decoded, defaulted and allocated.
import type { FieldPath } from './documents.js';
import { fieldError, goValue, isDNS1123Label, isDNS1123Subdomain, isQualifiedName, isValidCIDR, isValidIP, isValidPortName, isValidPortNum, nonSpecialIP } from './k8s-rules.js';
import { externallyAccessible, needsHealthCheck, type ServiceObject } from './service-defaults.js';
import { validateLabels, type Report } from './validate-meta.js';

export const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];
const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const POLICIES = ['Cluster', 'Local'];
// trafficDistribution: PreferSameZone and PreferSameNode are GA (locked on) since Kubernetes 1.35.
const TRAFFIC_DISTRIBUTIONS = ['PreferClose', 'PreferSameNode', 'PreferSameZone'];
const MAX_AFFINITY_SECONDS = 86400;
const TOPOLOGY_HINTS = 'service.kubernetes.io/topology-aware-hints';
const TOPOLOGY_MODE = 'service.kubernetes.io/topology-mode';
export const SOURCE_RANGES_ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';

/** servicePortKey prints core.ServicePort{Protocol, Port} as field.Duplicate does (Go's %#v of the struct). */
function servicePortKey(protocol: string, port: number): string {
  return `core.ServicePort{Name:"", Protocol:${goValue(protocol)}, AppProtocol:(*string)(nil), Port:${port}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`;
}

/** validatePortNumOrName is ValidatePortNumOrName, for targetPort. */
export function validatePortNumOrName(port: number | string, field: string, path: FieldPath, report: Report): void {
  const msgs = typeof port === 'number' ? isValidPortNum(port) : isValidPortName(port);
  for (const msg of msgs) report(path, fieldError.invalid(field, port, msg));
}

/** validateService reports every error ValidateService would (metadata is checked by the caller first). */
export function validateService(svc: ServiceObject, report: Report): void {
  const hints = svc.annotations[TOPOLOGY_HINTS];
  const mode = svc.annotations[TOPOLOGY_MODE];
  if (hints !== undefined && mode !== undefined && hints !== mode) {
    report(['metadata', 'annotations', TOPOLOGY_MODE], fieldError.invalid(`metadata.annotations[${TOPOLOGY_MODE}]`, mode, `must match annotations[${TOPOLOGY_HINTS}] when both are specified`));
  }
  const headless = svc.clusterIPs.length === 1 && svc.clusterIPs[0] === 'None';
  if (svc.ports.length === 0 && !headless && svc.type !== 'ExternalName') report(['spec'], fieldError.required('spec.ports'));
  const clusterIPsAt: FieldPath = svc.clusterIPsGiven ? ['spec', 'clusterIPs', 0] : ['spec', 'clusterIP'];
  if ((svc.type === 'LoadBalancer' || svc.type === 'NodePort') && headless) {
    report(clusterIPsAt, fieldError.invalid('spec.clusterIPs[0]', svc.clusterIPs[0], `may not be set to 'None' for ${svc.type} services`));
  }
  if (svc.type === 'ExternalName') {
    const forbidden = (path: FieldPath, field: string) => report(path, fieldError.forbidden(field, 'may not be set for ExternalName services'));
    if (svc.clusterIPs.length > 0) forbidden(svc.clusterIPsGiven ? ['spec', 'clusterIPs'] : ['spec', 'clusterIP'], 'spec.clusterIPs');
    if (svc.ipFamilies.length > 0) forbidden(['spec', 'ipFamilies'], 'spec.ipFamilies');
    if (svc.ipFamilyPolicy !== undefined) forbidden(['spec', 'ipFamilyPolicy'], 'spec.ipFamilyPolicy');
    // A CNAME may end in a dot.
    const cname = svc.externalName.replace(/\.$/, '');
    if (cname.length > 0) for (const msg of isDNS1123Subdomain(cname)) report(['spec', 'externalName'], fieldError.invalid('spec.externalName', cname, msg));
    else report(['spec'], fieldError.required('spec.externalName'));
  }

  const names = new Set<string>();
  svc.ports.forEach((sp, i) => {
    const at = (f: string): FieldPath => ['spec', 'ports', i, f];
    const field = (f: string) => `spec.ports[${i}].${f}`;
    if (svc.ports.length > 1 && sp.name === '') report(['spec', 'ports', i], fieldError.required(field('name')));
    else if (sp.name !== '') {
      for (const msg of isDNS1123Label(sp.name)) report(at('name'), fieldError.invalid(field('name'), sp.name, msg));
      if (names.has(sp.name)) report(at('name'), fieldError.duplicate(field('name'), sp.name));
      else names.add(sp.name);
    }
    for (const msg of isValidPortNum(sp.port)) report(at('port'), fieldError.invalid(field('port'), sp.port, msg));
    if (!PROTOCOLS.includes(sp.protocol)) report(at('protocol'), fieldError.notSupported(field('protocol'), sp.protocol, PROTOCOLS));
    validatePortNumOrName(sp.targetPort, field('targetPort'), at('targetPort'), report);
    if (sp.appProtocol !== undefined) for (const msg of isQualifiedName(sp.appProtocol)) report(at('appProtocol'), fieldError.invalid(field('appProtocol'), sp.appProtocol, msg));
  });

  if (svc.selector) validateLabels(svc.selector, ['spec', 'selector'], 'spec.selector', report);
  if (!['ClientIP', 'None'].includes(svc.sessionAffinity)) report(['spec', 'sessionAffinity'], fieldError.notSupported('spec.sessionAffinity', svc.sessionAffinity, ['ClientIP', 'None']));
  const timeout = svc.affinityTimeoutSeconds;
  if (timeout !== undefined && (timeout <= 0 || timeout > MAX_AFFINITY_SECONDS)) {
    report(
      ['spec', 'sessionAffinityConfig', 'clientIP', 'timeoutSeconds'],
      fieldError.invalid('spec.sessionAffinityConfig.clientIP.timeoutSeconds', timeout, `must be greater than 0 and less than ${MAX_AFFINITY_SECONDS}`),
    );
  }

  svc.externalIPs.forEach((ip, i) => {
    const msgs = isValidIP(ip);
    for (const msg of msgs.length > 0 ? msgs : nonSpecialIP(ip)) report(['spec', 'externalIPs', i], fieldError.invalid(`spec.externalIPs[${i}]`, ip, msg));
  });
  if (!SERVICE_TYPES.includes(svc.type)) report(['spec', 'type'], fieldError.notSupported('spec.type', svc.type, SERVICE_TYPES));
  if (svc.type === 'ClusterIP') {
    svc.ports.forEach((sp, i) => {
      if (sp.nodePort !== 0) report(['spec', 'ports', i, 'nodePort'], fieldError.forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'"));
    });
  }
  // Duplicates are (protocol, nodePort) and (protocol, port) pairs: TCP and UDP may share a number.
  const nodePorts = new Set<string>();
  svc.ports.forEach((sp, i) => {
    if (sp.nodePort === 0) return;
    const key = `${sp.protocol}/${sp.nodePort}`;
    if (nodePorts.has(key)) report(['spec', 'ports', i, 'nodePort'], fieldError.duplicate(`spec.ports[${i}].nodePort`, sp.nodePort));
    nodePorts.add(key);
  });
  const ports = new Set<string>();
  svc.ports.forEach((sp, i) => {
    const key = `${sp.protocol}/${sp.port}`;
    if (ports.has(key)) report(['spec', 'ports', i], fieldError.duplicateRaw(`spec.ports[${i}]`, servicePortKey(sp.protocol, sp.port)));
    ports.add(key);
  });

  validateSourceRanges(svc, report);
  if (svc.allocateLoadBalancerNodePorts !== undefined && svc.type !== 'LoadBalancer') {
    report(['spec', 'allocateLoadBalancerNodePorts'], fieldError.forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'"));
  }
  if (svc.loadBalancerClass !== undefined) {
    if (svc.type === 'LoadBalancer') for (const msg of isQualifiedName(svc.loadBalancerClass)) report(['spec', 'loadBalancerClass'], fieldError.invalid('spec.loadBalancerClass', svc.loadBalancerClass, msg));
    else report(['spec', 'loadBalancerClass'], fieldError.forbidden('spec.loadBalancerClass', "may only be used when `type` is 'LoadBalancer'"));
  }
  validateExternalTrafficPolicy(svc, report);
  if (svc.internalTrafficPolicy !== undefined && !POLICIES.includes(svc.internalTrafficPolicy)) {
    report(['spec', 'internalTrafficPolicy'], fieldError.notSupported('spec.internalTrafficPolicy', svc.internalTrafficPolicy, POLICIES));
  }
  if (svc.trafficDistribution !== undefined && !TRAFFIC_DISTRIBUTIONS.includes(svc.trafficDistribution)) {
    report(['spec', 'trafficDistribution'], fieldError.notSupported('spec.trafficDistribution', svc.trafficDistribution, TRAFFIC_DISTRIBUTIONS));
  }
}

/** validateSourceRanges checks loadBalancerSourceRanges, or its older annotation (each value may be space-padded). */
function validateSourceRanges(svc: ServiceObject, report: Report): void {
  const onlyLB = "may only be used when `type` is 'LoadBalancer'";
  if (svc.loadBalancerSourceRanges.length > 0) {
    // The API server names this field with a capital L.
    if (svc.type !== 'LoadBalancer') report(['spec', 'loadBalancerSourceRanges'], fieldError.forbidden('spec.LoadBalancerSourceRanges', onlyLB));
    svc.loadBalancerSourceRanges.forEach((value, i) => {
      const v = value.trim();
      for (const msg of isValidCIDR(v)) report(['spec', 'loadBalancerSourceRanges', i], fieldError.invalid(`spec.LoadBalancerSourceRanges[${i}]`, v, msg));
    });
    return;
  }
  const annotation = svc.annotations[SOURCE_RANGES_ANNOTATION];
  if (annotation === undefined) return;
  const path: FieldPath = ['metadata', 'annotations', SOURCE_RANGES_ANNOTATION];
  const field = `metadata.annotations[${SOURCE_RANGES_ANNOTATION}]`;
  if (svc.type !== 'LoadBalancer') report(path, fieldError.forbidden(field, onlyLB));
  const value = annotation.trim();
  if (value === '') return;
  for (const cidr of value.split(',')) for (const msg of isValidCIDR(cidr.trim())) report(path, fieldError.invalid(field, cidr.trim(), msg));
}

/** validateExternalTrafficPolicy is validateServiceExternalTrafficPolicy: the policy and healthCheckNodePort. */
function validateExternalTrafficPolicy(svc: ServiceObject, report: Report): void {
  const etp = svc.externalTrafficPolicy;
  if (!externallyAccessible(svc)) {
    if (etp !== '') report(['spec', 'externalTrafficPolicy'], fieldError.invalid('spec.externalTrafficPolicy', etp, 'may only be set for externally-accessible services'));
  } else if (etp === '') report(['spec'], fieldError.required('spec.externalTrafficPolicy'));
  else if (!POLICIES.includes(etp)) report(['spec', 'externalTrafficPolicy'], fieldError.notSupported('spec.externalTrafficPolicy', etp, POLICIES));
  const hcnp = svc.healthCheckNodePort;
  if (!needsHealthCheck(svc)) {
    if (hcnp !== 0) report(['spec', 'healthCheckNodePort'], fieldError.invalid('spec.healthCheckNodePort', hcnp, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
  } else if (hcnp !== 0) {
    for (const msg of isValidPortNum(hcnp)) report(['spec', 'healthCheckNodePort'], fieldError.invalid('spec.healthCheckNodePort', hcnp, msg));
  }
}

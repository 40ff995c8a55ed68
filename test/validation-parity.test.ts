// Validation parity with the API server. Each case is a case of Kubernetes' own
// pkg/apis/core/validation/validation_test.go (TestValidateServiceCreate, TestValidateServiceExternalTrafficPolicy),
// written as the YAML a user would apply, with the answer the API server gives to that YAML: defaults first (a
// field the test sets to "" is simply left out, and SetDefaults_Service fills it), then the REST storage's
// allocation (alloc.go: IP families, cluster IPs, nodePorts, healthCheckNodePort; its errors stop the create), then
// ValidateService. Where the unit test's answer differs from the API server's (it skips defaults and allocation),
// the comment says why.
import test from 'ava';
import { stringify } from 'yaml';
import { parseManifests } from '../src/manifest/load.js';
import { formatProblem } from '../src/manifest/problems.js';
import { clusterConfig } from '../src/model/addresses.js';

// Manifests are built as plain objects and written out with the yaml package, as a user's file would be.
type Obj = Record<string, any>;

/** makeValidService is the Kubernetes test's base Service, as YAML would write it. */
function makeValidService(): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'valid', namespace: 'valid', labels: {}, annotations: {} },
    spec: { selector: { key: 'val' }, sessionAffinity: 'None', type: 'ClusterIP', ports: [{ name: 'p', protocol: 'TCP', port: 8675, targetPort: 8675 }], internalTrafficPolicy: 'Cluster' },
  };
}

const SINGLE = clusterConfig('127.10.0.0/16', [30000, 32767]);
const DUAL = clusterConfig('127.10.0.0/16,fd00:10::/108', [30000, 32767]);

const DNS1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_LABEL = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NAME_PART = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const IP = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';
const CIDR = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';
const RANGE = 'provided port is not in the valid range. The range of valid ports is 30000-32767';
const INVALID = 'The Service "valid" is invalid: ';
const SRC = 'service.beta.kubernetes.io/load-balancer-source-ranges';

interface Case {
  name: string;
  tweak: (s: Obj) => void;
  /** errors are the messages on a single-stack IPv4 cluster (portlab's default), each after `file:line:col: `. */
  errors: string[];
  /** dual is the answer on a dual-stack cluster, where it differs. */
  dual?: string[];
}

const port = (p: Obj) => ({ protocol: 'TCP', ...p });
const lb = (s: Obj) => Object.assign(s.spec, { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', allocateLoadBalancerNodePorts: true });
const nodePort = (s: Obj) => Object.assign(s.spec, { type: 'NodePort', externalTrafficPolicy: 'Cluster' });
const ips = (s: Obj, policy: string | undefined, clusterIP: string | undefined, clusterIPs?: string[], families?: string[]) => {
  if (policy) s.spec.ipFamilyPolicy = policy;
  if (clusterIP !== undefined) s.spec.clusterIP = clusterIP;
  if (clusterIPs) s.spec.clusterIPs = clusterIPs;
  if (families) s.spec.ipFamilies = families;
};

const cases: Case[] = [
  // kubectl fills in the namespace; "" is the same as leaving it out.
  { name: 'missing namespace', tweak: (s) => (s.metadata.namespace = ''), errors: [] },
  { name: 'invalid namespace', tweak: (s) => (s.metadata.namespace = '-123'), errors: [`metadata.namespace: Invalid value: "-123": ${DNS1123_LABEL}`] },
  { name: 'missing name', tweak: (s) => (s.metadata.name = ''), errors: ['metadata.name: Required value: name or generateName is required'] },
  { name: 'invalid name', tweak: (s) => (s.metadata.name = '-123'), errors: [`metadata.name: Invalid value: "-123": ${DNS1035}`] },
  { name: 'too long name', tweak: (s) => (s.metadata.name = 'a'.repeat(64)), errors: [`metadata.name: Invalid value: "${'a'.repeat(64)}": must be no more than 63 bytes`] },
  { name: 'invalid generateName', tweak: (s) => (s.metadata.generateName = '-123'), errors: [`metadata.generateName: Invalid value: "-123": ${DNS1035}`] },
  { name: 'too long generateName', tweak: (s) => (s.metadata.generateName = 'a'.repeat(64)), errors: [`metadata.generateName: Invalid value: "${'a'.repeat(64)}": must be no more than 63 bytes`] },
  { name: 'invalid label', tweak: (s) => (s.metadata.labels['NoUppercaseOrSpecialCharsLike=Equals'] = 'bar'), errors: [`metadata.labels: Invalid value: "NoUppercaseOrSpecialCharsLike=Equals": ${NAME_PART}`] },
  { name: 'invalid annotation', tweak: (s) => (s.metadata.annotations['NoSpecialCharsLike=Equals'] = 'bar'), errors: [`metadata.annotations: Invalid value: "NoSpecialCharsLike=Equals": ${NAME_PART}`] },
  { name: 'nil selector', tweak: (s) => delete s.spec.selector, errors: [] },
  { name: 'invalid selector', tweak: (s) => (s.spec.selector['NoSpecialCharsLike=Equals'] = 'bar'), errors: [`spec.selector: Invalid value: "NoSpecialCharsLike=Equals": ${NAME_PART}`] },
  // The unit test clears fields that SetDefaults_Service fills: applied as YAML, they are valid.
  { name: 'missing session affinity', tweak: (s) => delete s.spec.sessionAffinity, errors: [] },
  { name: 'missing type', tweak: (s) => delete s.spec.type, errors: [] },
  { name: 'missing ports', tweak: (s) => delete s.spec.ports, errors: ['spec.ports: Required value'] },
  { name: 'missing ports but headless', tweak: (s) => (delete s.spec.ports, ips(s, undefined, 'None', ['None'])), errors: [] },
  { name: 'empty port[0] name', tweak: (s) => (s.spec.ports[0].name = ''), errors: [] },
  { name: 'empty port[1] name', tweak: (s) => s.spec.ports.push(port({ name: '', port: 12345, targetPort: 12345 })), errors: ['spec.ports[1].name: Required value'] },
  { name: 'empty multi-port port[0] name', tweak: (s) => ((s.spec.ports[0].name = ''), s.spec.ports.push(port({ name: 'p', port: 12345, targetPort: 12345 }))), errors: ['spec.ports[0].name: Required value'] },
  { name: 'invalid port name', tweak: (s) => (s.spec.ports[0].name = 'INVALID'), errors: [`spec.ports[0].name: Invalid value: "INVALID": ${DNS1123_LABEL}`] },
  { name: 'port name with dots', tweak: (s) => (s.spec.ports[0].name = 'web.v1'), errors: ['spec.ports[0].name: Invalid value: "web.v1": must not contain dots'] },
  { name: 'missing protocol', tweak: (s) => delete s.spec.ports[0].protocol, errors: [] },
  { name: 'invalid protocol', tweak: (s) => (s.spec.ports[0].protocol = 'INVALID'), errors: ['spec.ports[0].protocol: Unsupported value: "INVALID": supported values: "SCTP", "TCP", "UDP"'] },
  // ValidateServiceClusterIPsRelatedFields runs during allocation, so the create stops there.
  { name: 'invalid cluster ip', tweak: (s) => ips(s, undefined, 'invalid', ['invalid']), errors: [`spec.clusterIPs[0]: Invalid value: "invalid": ${IP}`] },
  { name: 'invalid cluster ip (clusterIP only, as older clients write it)', tweak: (s) => ips(s, undefined, 'invalid'), errors: [`spec.clusterIPs[0]: Invalid value: "invalid": ${IP}`] },
  { name: 'missing port', tweak: (s) => (s.spec.ports[0].port = 0), errors: ['spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive'] },
  { name: 'invalid port', tweak: (s) => (s.spec.ports[0].port = 65536), errors: ['spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive'] },
  { name: 'invalid TargetPort int', tweak: (s) => (s.spec.ports[0].targetPort = 65536), errors: ['spec.ports[0].targetPort: Invalid value: 65536: must be between 1 and 65535, inclusive'] },
  { name: 'valid port headless', tweak: (s) => (Object.assign(s.spec.ports[0], { port: 11722, targetPort: 11722 }), ips(s, undefined, 'None', ['None'])), errors: [] },
  // In the v1 API, targetPorts on headless Services are tolerated.
  { name: 'invalid port headless 1', tweak: (s) => (Object.assign(s.spec.ports[0], { port: 11722, targetPort: 11721 }), ips(s, undefined, 'None', ['None'])), errors: [] },
  { name: 'invalid port headless 2', tweak: (s) => (Object.assign(s.spec.ports[0], { port: 11722, targetPort: 'target' }), ips(s, undefined, 'None', ['None'])), errors: [] },
  { name: 'invalid publicIPs localhost', tweak: (s) => Object.assign(s.spec, { externalTrafficPolicy: 'Cluster', externalIPs: ['127.0.0.1'] }), errors: ['spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)'] },
  { name: 'invalid publicIPs unspecified', tweak: (s) => Object.assign(s.spec, { externalTrafficPolicy: 'Cluster', externalIPs: ['0.0.0.0'] }), errors: ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)'] },
  { name: 'invalid publicIPs link-local', tweak: (s) => Object.assign(s.spec, { externalTrafficPolicy: 'Cluster', externalIPs: ['169.254.169.254'] }), errors: ['spec.externalIPs[0]: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)'] },
  { name: 'invalid publicIPs host', tweak: (s) => Object.assign(s.spec, { externalTrafficPolicy: 'Cluster', externalIPs: ['myhost.mydomain'] }), errors: [`spec.externalIPs[0]: Invalid value: "myhost.mydomain": ${IP}`] },
  { name: 'valid publicIPs', tweak: (s) => Object.assign(s.spec, { externalTrafficPolicy: 'Cluster', externalIPs: ['1.2.3.4'] }), errors: [] },
  { name: 'dup port name', tweak: (s) => ((s.spec.ports[0].name = 'p'), s.spec.ports.push(port({ name: 'p', port: 12345, targetPort: 12345 }))), errors: ['spec.ports[1].name: Duplicate value: "p"'] },
  { name: 'valid load balancer protocol UDP 1', tweak: (s) => (lb(s), (s.spec.ports[0].protocol = 'UDP')), errors: [] },
  { name: 'valid load balancer protocol UDP 2', tweak: (s) => (lb(s), (s.spec.ports[0] = { name: 'q', port: 12345, protocol: 'UDP', targetPort: 12345 })), errors: [] },
  { name: 'load balancer with mix protocol', tweak: (s) => (lb(s), s.spec.ports.push({ name: 'q', port: 12345, protocol: 'UDP', targetPort: 12345 })), errors: [] },
  { name: 'valid 1', tweak: () => {}, errors: [] },
  { name: 'valid 2', tweak: (s) => Object.assign(s.spec.ports[0], { protocol: 'UDP', targetPort: 12345 }), errors: [] },
  { name: 'valid 3', tweak: (s) => (s.spec.ports[0].targetPort = 'http'), errors: [] },
  { name: 'valid cluster ip - none', tweak: (s) => ips(s, undefined, 'None', ['None']), errors: [] },
  { name: 'valid cluster ip - empty', tweak: (s) => (s.spec.ports[0].targetPort = 'http'), errors: [] },
  { name: 'valid type - loadbalancer', tweak: lb, errors: [] },
  { name: 'valid type - loadbalancer with allocateLoadBalancerNodePorts=false', tweak: (s) => (lb(s), (s.spec.allocateLoadBalancerNodePorts = false)), errors: [] },
  { name: 'invalid type - missing AllocateLoadBalancerNodePorts for loadbalancer type (defaulted to true)', tweak: (s) => (lb(s), delete s.spec.allocateLoadBalancerNodePorts), errors: [] },
  { name: 'valid type loadbalancer 2 ports', tweak: (s) => (lb(s), s.spec.ports.push(port({ name: 'q', port: 12345, targetPort: 12345 }))), errors: [] },
  // The unit test asks for nodePort 1; the API server's allocator refuses it before validation runs.
  {
    name: 'duplicate nodeports',
    tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 1, nodePort: 1, targetPort: 1 }), port({ name: 'r', port: 2, nodePort: 1, targetPort: 2 }))),
    errors: [`spec.ports[1].nodePort: Invalid value: 1: ${RANGE}`],
  },
  {
    name: 'duplicate nodeports, in range: two port numbers may not share one nodePort',
    tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 1, nodePort: 30001, targetPort: 1 }), port({ name: 'r', port: 2, nodePort: 30001, targetPort: 2 }))),
    errors: ['spec.ports[2].nodePort: Invalid value: 30001: provided port is already allocated'],
  },
  {
    name: 'duplicate nodeports (different protocols): the allocator refuses what validation allows',
    tweak: (s) =>
      (nodePort(s),
      s.spec.ports.push({ name: 'q', port: 1, protocol: 'TCP', nodePort: 30001, targetPort: 1 }, { name: 'r', port: 2, protocol: 'UDP', nodePort: 30001, targetPort: 2 }, { name: 's', port: 3, protocol: 'SCTP', nodePort: 30001, targetPort: 3 })),
    errors: ['spec.ports[2].nodePort: Invalid value: 30001: provided port is already allocated'],
  },
  {
    name: 'a TCP and a UDP port with the same number share a nodePort',
    tweak: (s) => (nodePort(s), s.spec.ports.push({ name: 'dns-tcp', port: 53, protocol: 'TCP', nodePort: 30053, targetPort: 53 }, { name: 'dns-udp', port: 53, protocol: 'UDP', nodePort: 30053, targetPort: 53 })),
    errors: [],
  },
  {
    name: 'the same port and protocol twice with one nodePort: both duplicates',
    tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 1, nodePort: 30001, targetPort: 1 }), port({ name: 'r', port: 1, nodePort: 30001, targetPort: 1 }))),
    errors: [
      'spec.ports[2].nodePort: Duplicate value: 30001',
      'spec.ports[2]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:1, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
    ],
  },
  {
    name: 'invalid duplicate ports (with same protocol)',
    tweak: (s) => s.spec.ports.push(port({ name: 'q', port: 12345, targetPort: 8080 }), port({ name: 'r', port: 12345, targetPort: 80 })),
    errors: ['spec.ports[2]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:12345, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'],
  },
  {
    name: 'valid duplicate ports (with different protocols)',
    tweak: (s) => s.spec.ports.push({ name: 'q', port: 12345, protocol: 'TCP', targetPort: 8080 }, { name: 'r', port: 12345, protocol: 'UDP', targetPort: 80 }, { name: 's', port: 12345, protocol: 'SCTP', targetPort: 8088 }),
    errors: [],
  },
  { name: 'valid type - nodeport', tweak: nodePort, errors: [] },
  // nodePort 12345 is outside 30000-32767: the unit test skips allocation, the API server does not.
  { name: 'valid type loadbalancer with NodePort', tweak: (s) => (lb(s), s.spec.ports.push(port({ name: 'q', port: 12345, nodePort: 12345, targetPort: 12345 }))), errors: [`spec.ports[1].nodePort: Invalid value: 12345: ${RANGE}`] },
  { name: 'valid type loadbalancer with NodePort, in range', tweak: (s) => (lb(s), s.spec.ports.push(port({ name: 'q', port: 12345, nodePort: 31234, targetPort: 12345 }))), errors: [] },
  { name: 'valid type=NodePort service with NodePort', tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 12345, nodePort: 12345, targetPort: 12345 }))), errors: [`spec.ports[1].nodePort: Invalid value: 12345: ${RANGE}`] },
  { name: 'valid type=NodePort service without NodePort', tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 12345, targetPort: 12345 }))), errors: [] },
  { name: 'valid cluster service without NodePort', tweak: (s) => s.spec.ports.push(port({ name: 'q', port: 12345, targetPort: 12345 })), errors: [] },
  { name: 'invalid cluster service with NodePort', tweak: (s) => s.spec.ports.push(port({ name: 'q', port: 12345, nodePort: 12345, targetPort: 12345 })), errors: ["spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"] },
  {
    name: 'invalid public service with duplicate NodePort',
    tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'p1', port: 1, nodePort: 1, targetPort: 1 }), port({ name: 'p2', port: 2, nodePort: 1, targetPort: 2 }))),
    errors: [`spec.ports[1].nodePort: Invalid value: 1: ${RANGE}`],
  },
  { name: 'valid port type=LoadBalancer', tweak: (s) => (lb(s), s.spec.ports.push(port({ name: 'kubelet', port: 10250, targetPort: 12345 }))), errors: [] },
  { name: 'valid LoadBalancer source range annotation', tweak: (s) => (lb(s), (s.metadata.annotations[SRC] = '1.2.3.0/24,  5.6.0.0/16')), errors: [] },
  { name: 'valid empty LoadBalancer source range annotation', tweak: (s) => (lb(s), (s.metadata.annotations[SRC] = '')), errors: [] },
  { name: 'valid whitespace-only LoadBalancer source range annotation', tweak: (s) => (lb(s), (s.metadata.annotations[SRC] = '  ')), errors: [] },
  { name: 'invalid LoadBalancer source range annotation (hostname)', tweak: (s) => (lb(s), (s.metadata.annotations[SRC] = 'foo.bar')), errors: [`metadata.annotations[${SRC}]: Invalid value: "foo.bar": ${CIDR}`] },
  { name: 'invalid LoadBalancer source range annotation (invalid CIDR)', tweak: (s) => (lb(s), (s.metadata.annotations[SRC] = '1.2.3.4/33')), errors: [`metadata.annotations[${SRC}]: Invalid value: "1.2.3.4/33": ${CIDR}`] },
  { name: 'invalid LoadBalancer source range annotation for non LoadBalancer type service', tweak: (s) => (s.metadata.annotations[SRC] = '1.2.3.0/24'), errors: [`metadata.annotations[${SRC}]: Forbidden: may only be used when \`type\` is 'LoadBalancer'`] },
  { name: 'invalid empty-but-set LoadBalancer source range annotation for non LoadBalancer type service', tweak: (s) => (s.metadata.annotations[SRC] = ''), errors: [`metadata.annotations[${SRC}]: Forbidden: may only be used when \`type\` is 'LoadBalancer'`] },
  { name: 'valid LoadBalancer source range', tweak: (s) => (lb(s), (s.spec.loadBalancerSourceRanges = ['1.2.3.0/24', '5.6.0.0/16'])), errors: [] },
  { name: 'valid LoadBalancer source range with whitespace', tweak: (s) => (lb(s), (s.spec.loadBalancerSourceRanges = ['1.2.3.0/24  ', ' 5.6.0.0/16'])), errors: [] },
  { name: 'invalid empty LoadBalancer source range', tweak: (s) => (lb(s), (s.spec.loadBalancerSourceRanges = ['   '])), errors: [`spec.LoadBalancerSourceRanges[0]: Invalid value: "": ${CIDR}`] },
  { name: 'invalid LoadBalancer source range (hostname)', tweak: (s) => (lb(s), (s.spec.loadBalancerSourceRanges = ['foo.bar'])), errors: [`spec.LoadBalancerSourceRanges[0]: Invalid value: "foo.bar": ${CIDR}`] },
  { name: 'invalid LoadBalancer source range (invalid CIDR)', tweak: (s) => (lb(s), (s.spec.loadBalancerSourceRanges = ['1.2.3.4/33'])), errors: [`spec.LoadBalancerSourceRanges[0]: Invalid value: "1.2.3.4/33": ${CIDR}`] },
  { name: 'invalid source range for non LoadBalancer type service', tweak: (s) => (s.spec.loadBalancerSourceRanges = ['1.2.3.0/24', '5.6.0.0/16']), errors: ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"] },
  { name: 'invalid source range annotation ignored with valid source range field', tweak: (s) => (lb(s), (s.metadata.annotations[SRC] = 'foo.bar'), (s.spec.loadBalancerSourceRanges = ['1.2.3.0/24', '5.6.0.0/16'])), errors: [] },
  { name: 'valid ExternalName', tweak: (s) => Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.example.com' }), errors: [] },
  { name: 'valid ExternalName (trailing dot)', tweak: (s) => Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.example.com.' }), errors: [] },
  { name: 'invalid ExternalName clusterIP (valid IP)', tweak: (s) => (Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.example.com' }), ips(s, undefined, '1.2.3.4', ['1.2.3.4'])), errors: ['spec.clusterIPs: Forbidden: may not be set for ExternalName services'] },
  { name: 'invalid ExternalName clusterIP (None)', tweak: (s) => (Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.example.com' }), ips(s, undefined, 'None', ['None'])), errors: ['spec.clusterIPs: Forbidden: may not be set for ExternalName services'] },
  { name: 'invalid ExternalName (not a DNS name)', tweak: (s) => Object.assign(s.spec, { type: 'ExternalName', externalName: '-123' }), errors: [`spec.externalName: Invalid value: "-123": ${DNS1123_SUBDOMAIN}`] },
  { name: 'ExternalName may not set ipFamilies or ipFamilyPolicy', tweak: (s) => Object.assign(s.spec, { type: 'ExternalName', externalName: 'db.example.com', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' }), errors: ['spec.ipFamilies: Forbidden: may not be set for ExternalName services', 'spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services'] },
  { name: 'ExternalName without externalName', tweak: (s) => (s.spec.type = 'ExternalName'), errors: ['spec.externalName: Required value'] },
  { name: 'LoadBalancer type cannot have None ClusterIP', tweak: (s) => (ips(s, undefined, 'None', ['None']), lb(s)), errors: ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for LoadBalancer services'] },
  { name: 'invalid node port with clusterIP None', tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 1, nodePort: 1, targetPort: 1 })), ips(s, undefined, 'None', ['None'])), errors: [`spec.ports[1].nodePort: Invalid value: 1: ${RANGE}`] },
  { name: 'invalid node port with clusterIP None, in range', tweak: (s) => (nodePort(s), s.spec.ports.push(port({ name: 'q', port: 1, nodePort: 30001, targetPort: 1 })), ips(s, undefined, 'None', ['None'])), errors: ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort services'] },
  // ESIPP section.
  { name: 'invalid externalTraffic field', tweak: (s) => (lb(s), (s.spec.externalTrafficPolicy = 'invalid')), errors: ['spec.externalTrafficPolicy: Unsupported value: "invalid": supported values: "Cluster", "Local"'] },
  { name: 'nil internalTraffic field (defaulted to Cluster)', tweak: (s) => delete s.spec.internalTrafficPolicy, errors: [] },
  { name: 'internalTrafficPolicy field nil when type is ExternalName', tweak: (s) => (delete s.spec.internalTrafficPolicy, Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.com' })), errors: [] },
  { name: 'internalTrafficPolicy field is set when type is ExternalName', tweak: (s) => Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.com' }), errors: [] },
  { name: 'invalid internalTraffic field', tweak: (s) => (s.spec.internalTrafficPolicy = 'invalid'), errors: ['spec.internalTrafficPolicy: Unsupported value: "invalid": supported values: "Cluster", "Local"'] },
  { name: 'internalTrafficPolicy field set to Local', tweak: (s) => (s.spec.internalTrafficPolicy = 'Local'), errors: [] },
  // A requested healthCheckNodePort is allocated before validation; a failure there is an internal error.
  {
    name: 'negative healthCheckNodePort field',
    tweak: (s) => (lb(s), Object.assign(s.spec, { externalTrafficPolicy: 'Local', healthCheckNodePort: -1 })),
    errors: [`Internal error occurred: failed to allocate requested HealthCheck NodePort -1: ${RANGE}`],
  },
  { name: 'healthCheckNodePort 31100', tweak: (s) => (lb(s), Object.assign(s.spec, { externalTrafficPolicy: 'Local', healthCheckNodePort: 31100 })), errors: [] },
  {
    name: 'invalid timeoutSeconds field',
    tweak: (s) => Object.assign(s.spec, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: -1 } } }),
    errors: ['spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: -1: must be greater than 0 and less than 86400'],
  },
  // SetDefaults_Service drops sessionAffinityConfig when the affinity is None, so the API server takes this.
  { name: "sessionAffinityConfig can't be set when session affinity is None", tweak: (s) => (lb(s), Object.assign(s.spec, { sessionAffinityConfig: { clientIP: { timeoutSeconds: 90 } } })), errors: [] },
  // IP families: ValidateServiceClusterIPsRelatedFields and initIPFamilyFields, during allocation.
  { name: 'invalid, service with invalid ipFamilies', tweak: (s) => ips(s, undefined, undefined, undefined, ['not-a-valid-ip-family']), errors: ['spec.ipFamilies[0]: Unsupported value: "not-a-valid-ip-family": supported values: "IPv4", "IPv6"'] },
  { name: 'invalid, service with invalid ipFamilies (2nd)', tweak: (s) => ips(s, 'RequireDualStack', undefined, undefined, ['IPv4', 'not-a-valid-ip-family']), errors: ['spec.ipFamilies[1]: Unsupported value: "not-a-valid-ip-family": supported values: "IPv4", "IPv6"'] },
  {
    name: 'IPFamilyPolicy(singleStack) is set for two families',
    tweak: (s) => ips(s, 'SingleStack', undefined, undefined, ['IPv4', 'IPv6']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' when multiple IP families are specified'],
  },
  { name: 'valid, IPFamilyPolicy(preferDualStack) is set for two families', tweak: (s) => ips(s, 'PreferDualStack', undefined, undefined, ['IPv4', 'IPv6']), errors: ['spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster'], dual: [] },
  { name: 'invalid, service with 2+ ipFamilies', tweak: (s) => ips(s, 'RequireDualStack', undefined, undefined, ['IPv4', 'IPv6', 'IPv4']), errors: ['spec.ipFamilies[2]: Duplicate value: "IPv4"'] },
  { name: 'invalid, service with same ip families', tweak: (s) => ips(s, 'RequireDualStack', undefined, undefined, ['IPv6', 'IPv6']), errors: ['spec.ipFamilies[1]: Duplicate value: "IPv6"'] },
  { name: 'valid, service with valid ipFamilies (v4)', tweak: (s) => ips(s, undefined, undefined, undefined, ['IPv4']), errors: [] },
  { name: 'valid, service with valid ipFamilies (v6)', tweak: (s) => ips(s, undefined, undefined, undefined, ['IPv6']), errors: ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'], dual: [] },
  {
    name: 'valid, service with valid ipFamilies(v4,v6)',
    tweak: (s) => ips(s, 'RequireDualStack', undefined, undefined, ['IPv4', 'IPv6']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services', 'spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster'],
    dual: [],
  },
  {
    name: 'valid, service with valid ipFamilies(v6,v4)',
    tweak: (s) => ips(s, 'RequireDualStack', undefined, undefined, ['IPv6', 'IPv4']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services', 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    dual: [],
  },
  { name: 'valid, service preferred dual stack with single family', tweak: (s) => ips(s, 'PreferDualStack', undefined, undefined, ['IPv6']), errors: ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'], dual: [] },
  { name: 'invalid, garbage single ip', tweak: (s) => ips(s, undefined, 'garbage-ip', ['garbage-ip']), errors: [`spec.clusterIPs[0]: Invalid value: "garbage-ip": ${IP}`] },
  {
    name: 'invalid, garbage ips',
    tweak: (s) => ips(s, 'RequireDualStack', 'garbage-ip', ['garbage-ip', 'garbage-second-ip']),
    errors: [`spec.clusterIPs[0]: Invalid value: "garbage-ip": ${IP}`, `spec.clusterIPs[1]: Invalid value: "garbage-second-ip": ${IP}`],
  },
  { name: 'invalid, garbage first ip', tweak: (s) => ips(s, 'RequireDualStack', 'garbage-ip', ['garbage-ip', '2001::1']), errors: [`spec.clusterIPs[0]: Invalid value: "garbage-ip": ${IP}`] },
  { name: 'invalid, garbage second ip', tweak: (s) => ips(s, 'RequireDualStack', '2001::1', ['2001::1', 'garbage-ip']), errors: [`spec.clusterIPs[1]: Invalid value: "garbage-ip": ${IP}`] },
  { name: 'invalid, NONE + IP', tweak: (s) => ips(s, 'RequireDualStack', 'None', ['None', '2001::1']), errors: ['spec.clusterIPs: Invalid value: []string{"None", "2001::1"}: \'None\' must be the first and only value'] },
  { name: 'invalid, IP + NONE', tweak: (s) => ips(s, 'RequireDualStack', '2001::1', ['2001::1', 'None']), errors: [`spec.clusterIPs[1]: Invalid value: "None": ${IP}`] },
  {
    name: 'invalid, EMPTY STRING + IP',
    tweak: (s) => ips(s, 'RequireDualStack', '', ['', '2001::1']),
    errors: ['spec.clusterIPs: Invalid value: []string{"", "2001::1"}: must be empty when `clusterIP` is not specified', `spec.clusterIPs[0]: Invalid value: "": ${IP}`],
  },
  { name: 'invalid, IP + EMPTY STRING', tweak: (s) => ips(s, 'RequireDualStack', '2001::1', ['2001::1', '']), errors: [`spec.clusterIPs[1]: Invalid value: "": ${IP}`] },
  {
    name: 'invalid, same ip family (v6)',
    tweak: (s) => ips(s, 'RequireDualStack', '2001::1', ['2001::1', '2001::4'], ['IPv4', 'IPv6']),
    errors: ['spec.clusterIPs: Invalid value: []string{"2001::1", "2001::4"}: may specify no more than one IP for each IP family', 'spec.clusterIPs[0]: Invalid value: "2001::1": expected an IPv4 value as indicated by `ipFamilies[0]`'],
  },
  {
    name: 'invalid, same ip family (v4)',
    tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.1', ['10.0.0.1', '10.0.0.10'], ['IPv4', 'IPv6']),
    errors: ['spec.clusterIPs: Invalid value: []string{"10.0.0.1", "10.0.0.10"}: may specify no more than one IP for each IP family', 'spec.clusterIPs[1]: Invalid value: "10.0.0.10": expected an IPv6 value as indicated by `ipFamilies[1]`'],
  },
  {
    name: 'invalid, more than two ips',
    tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.1', ['10.0.0.1', '2001::1', '10.0.0.10'], ['IPv4', 'IPv6']),
    errors: ['spec.clusterIPs: Invalid value: []string{"10.0.0.1", "2001::1", "10.0.0.10"}: may only hold up to 2 values'],
  },
  // The unit test leaves this to allocation, which refuses it.
  {
    name: 'multi ip, dualstack not set (request for downgrade)',
    tweak: (s) => ips(s, 'SingleStack', '10.0.0.1', ['10.0.0.1', '2001::1'], ['IPv4', 'IPv6']),
    errors: [
      'spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' when multiple cluster IPs are specified',
      'spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' when multiple IP families are specified',
    ],
  },
  { name: 'valid, headless-no-selector + multi family + gate off', tweak: (s) => (ips(s, 'RequireDualStack', 'None', ['None'], ['IPv4', 'IPv6']), delete s.spec.selector), errors: [] },
  {
    name: 'valid, multi ip, single ipfamilies preferDualStack',
    tweak: (s) => ips(s, 'PreferDualStack', '10.0.0.1', ['10.0.0.1', '2001::1'], ['IPv4']),
    errors: ['spec.clusterIPs[1]: Invalid value: []string{"10.0.0.1", "2001::1"}: IPv6 is not configured on this cluster'],
    dual: [],
  },
  {
    name: 'valid, multi ip, single ipfamilies (must match when provided) + requireDualStack',
    tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.1', ['10.0.0.1', '2001::1'], ['IPv4']),
    errors: ['spec.clusterIPs[1]: Invalid value: []string{"10.0.0.1", "2001::1"}: IPv6 is not configured on this cluster'],
    dual: [],
  },
  { name: "invalid, families don't match (v4=>v6)", tweak: (s) => ips(s, undefined, '10.0.0.1', ['10.0.0.1'], ['IPv6']), errors: ['spec.clusterIPs[0]: Invalid value: "10.0.0.1": expected an IPv6 value as indicated by `ipFamilies[0]`'] },
  { name: "invalid, families don't match (v6=>v4)", tweak: (s) => ips(s, undefined, '2001::1', ['2001::1'], ['IPv4']), errors: ['spec.clusterIPs[0]: Invalid value: "2001::1": expected an IPv4 value as indicated by `ipFamilies[0]`'] },
  { name: 'valid, single ip', tweak: (s) => ips(s, 'SingleStack', '10.0.0.1', ['10.0.0.1']), errors: [] },
  { name: 'valid, single family', tweak: (s) => ips(s, 'SingleStack', undefined, undefined, ['IPv6']), errors: ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'], dual: [] },
  { name: 'valid, single ip + single family', tweak: (s) => ips(s, 'SingleStack', '2001::1', ['2001::1'], ['IPv6']), errors: ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'], dual: [] },
  { name: 'valid, single ip + single family (dual stack requested)', tweak: (s) => ips(s, 'PreferDualStack', '2001::1', ['2001::1'], ['IPv6']), errors: ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'], dual: [] },
  {
    name: 'valid, single ip, multi ipfamilies',
    tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.1', ['10.0.0.1'], ['IPv4', 'IPv6']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services', 'spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster'],
    dual: [],
  },
  {
    name: 'valid, multi ips, multi ipfamilies (4,6)',
    tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.1', ['10.0.0.1', '2001::1'], ['IPv4', 'IPv6']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services', 'spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster'],
    dual: [],
  },
  {
    name: 'valid, ips, multi ipfamilies (6,4)',
    tweak: (s) => ips(s, 'RequireDualStack', '2001::1', ['2001::1', '10.0.0.1'], ['IPv6', 'IPv4']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services', 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    dual: [],
  },
  { name: 'valid, multi ips (6,4)', tweak: (s) => ips(s, 'RequireDualStack', '2001::1', ['2001::1', '10.0.0.1']), errors: ['spec.clusterIPs[0]: Invalid value: []string{"2001::1", "10.0.0.1"}: IPv6 is not configured on this cluster'], dual: [] },
  {
    name: 'valid, multi ipfamilies (6,4)',
    tweak: (s) => ips(s, 'RequireDualStack', undefined, undefined, ['IPv6', 'IPv4']),
    errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services', 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    dual: [],
  },
  { name: 'valid, multi ips (4,6)', tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.1', ['10.0.0.1', '2001::1']), errors: ['spec.clusterIPs[1]: Invalid value: []string{"10.0.0.1", "2001::1"}: IPv6 is not configured on this cluster'], dual: [] },
  { name: 'valid, dual stack', tweak: (s) => ips(s, 'RequireDualStack', undefined), errors: ['spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services'], dual: [] },
  { name: 'valid appProtocol', tweak: (s) => (s.spec.ports = [{ port: 12345, targetPort: 12345, protocol: 'TCP', appProtocol: 'HTTP' }]), errors: [] },
  { name: 'valid custom appProtocol', tweak: (s) => (s.spec.ports = [{ port: 12345, targetPort: 12345, protocol: 'TCP', appProtocol: 'example.com/protocol' }]), errors: [] },
  {
    name: 'invalid appProtocol',
    tweak: (s) => (s.spec.ports = [{ port: 12345, targetPort: 12345, protocol: 'TCP', appProtocol: 'example.com/protocol_with{invalid}[characters]' }]),
    errors: [`spec.ports[0].appProtocol: Invalid value: "example.com/protocol_with{invalid}[characters]": ${NAME_PART}`],
  },
  { name: 'invalid cluster ip != clusterIP in multi ip service', tweak: (s) => ips(s, 'RequireDualStack', '10.0.0.10', ['10.0.0.1', '2001::1']), errors: ['spec.clusterIPs: Invalid value: []string{"10.0.0.1", "2001::1"}: first value must match `clusterIP`'] },
  { name: 'invalid cluster ip != clusterIP in single ip service', tweak: (s) => ips(s, undefined, '10.0.0.10', ['10.0.0.1']), errors: ['spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: first value must match `clusterIP`'] },
  { name: 'Use AllocateLoadBalancerNodePorts when type is not LoadBalancer', tweak: (s) => (s.spec.allocateLoadBalancerNodePorts = true), errors: ["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"] },
  { name: 'valid LoadBalancerClass when type is LoadBalancer', tweak: (s) => (lb(s), (s.spec.loadBalancerClass = 'test.com/test-load-balancer-class')), errors: [] },
  { name: 'invalid LoadBalancerClass', tweak: (s) => (lb(s), (s.spec.loadBalancerClass = 'Bad/LoadBalancerClass')), errors: [`spec.loadBalancerClass: Invalid value: "Bad/LoadBalancerClass": prefix part ${DNS1123_SUBDOMAIN}`] },
  { name: 'invalid: set LoadBalancerClass when type is not LoadBalancer', tweak: (s) => (s.spec.loadBalancerClass = 'test.com/test-load-balancer-class'), errors: ["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"] },
  {
    name: 'topology annotations are mismatched',
    tweak: (s) => Object.assign(s.metadata.annotations, { 'service.kubernetes.io/topology-aware-hints': 'original', 'service.kubernetes.io/topology-mode': 'different' }),
    errors: ['metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "different": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified'],
  },
  { name: 'valid: trafficDistribution field set to PreferClose', tweak: (s) => (s.spec.trafficDistribution = 'PreferClose'), errors: [] },
  { name: 'valid: trafficDistribution field set to PreferSameNode (GA in 1.35)', tweak: (s) => (s.spec.trafficDistribution = 'PreferSameNode'), errors: [] },
  { name: 'invalid: trafficDistribution field set to Random', tweak: (s) => (s.spec.trafficDistribution = 'Random'), errors: ['spec.trafficDistribution: Unsupported value: "Random": supported values: "PreferClose", "PreferSameNode", "PreferSameZone"'] },
  // TestValidateServiceExternalTrafficPolicy. healthCheckNodePort 34567 lies outside 30000-32767: allocation refuses it.
  {
    name: 'valid loadBalancer service with externalTrafficPolicy and healthCheckNodePort set',
    tweak: (s) => (lb(s), Object.assign(s.spec, { externalTrafficPolicy: 'Local', healthCheckNodePort: 34567 })),
    errors: ['Internal error occurred: failed to allocate requested HealthCheck NodePort 34567: provided port is not in the valid range. The range of valid ports is 30000-32767'],
  },
  { name: 'valid nodePort service with externalTrafficPolicy set', tweak: (s) => (nodePort(s), (s.spec.externalTrafficPolicy = 'Local')), errors: [] },
  {
    name: 'cannot set healthCheckNodePort field on loadBalancer service with externalTrafficPolicy!=Local',
    tweak: (s) => (lb(s), (s.spec.healthCheckNodePort = 34567)),
    errors: ["spec.healthCheckNodePort: Invalid value: 34567: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"],
  },
  {
    name: 'cannot set healthCheckNodePort field on nodePort service',
    tweak: (s) => (nodePort(s), Object.assign(s.spec, { externalTrafficPolicy: 'Local', healthCheckNodePort: 34567 })),
    errors: ["spec.healthCheckNodePort: Invalid value: 34567: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"],
  },
  {
    name: 'cannot set externalTrafficPolicy or healthCheckNodePort fields on clusterIP service',
    tweak: (s) => Object.assign(s.spec, { externalTrafficPolicy: 'Local', healthCheckNodePort: 34567 }),
    errors: ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services', "spec.healthCheckNodePort: Invalid value: 34567: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"],
  },
  { name: 'cannot set externalTrafficPolicy field on ExternalName service', tweak: (s) => Object.assign(s.spec, { type: 'ExternalName', externalName: 'foo.bar.com', externalTrafficPolicy: 'Local' }), errors: ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'] },
  { name: 'externalTrafficPolicy on a ClusterIP service with externalIPs (defaulted to Cluster)', tweak: (s) => (s.spec.externalIPs = ['1.2.3,4']), errors: [`spec.externalIPs[0]: Invalid value: "1.2.3,4": ${IP}`] },
];

/** validateAs runs `portlab validate`'s manifest layer on one Service and returns its problems as printed. */
function validateAs(obj: Obj, cluster = SINGLE, extra = ''): { lines: string[]; text: string } {
  const text = `${stringify(obj)}${extra}`;
  const parsed = parseManifests([{ file: 'svc.yml', text }], cluster);
  return { lines: parsed.problems.flatMap((p) => formatProblem(p).split('\n')), text };
}

/**
 * positionFits checks a problem's file:line:col points where the field is written: at a line that names the field or
 * its value, at a list item under the field, or, for a field that is missing, at the mapping it belongs in.
 */
function positionFits(line: string, text: string): boolean {
  const m = /^svc\.yml:(\d+):(\d+): (?:The Service "[^"]*" is invalid: |Internal error occurred: failed to allocate requested HealthCheck NodePort)([\w.[\]/-]*)/.exec(line);
  if (!m) return false;
  const lines = text.split('\n');
  const at = Number(m[1]) - 1;
  const segments = (m[3] || 'spec.healthCheckNodePort').replace(/\[[^\]]*\]/g, '').split('.').map((x) => x.toLowerCase());
  const wanted = segments.slice(-2);
  const value = /(?:Invalid|Duplicate|Unsupported) value: "([^"]+)"/.exec(line)?.[1];
  const names = (source: string) => wanted.some((w) => source.toLowerCase().includes(w)) || (value !== undefined && source.includes(value));
  if (names(lines[at] ?? '')) return true;
  // Up through the enclosing keys: a list item's key, or the mapping a missing field belongs in.
  let indent = (lines[at] ?? '').search(/\S/);
  for (let i = at - 1; i >= 0 && indent > 0; i--) {
    const own = lines[i]!.search(/\S/);
    if (own < 0 || own >= indent) continue;
    if (names(lines[i]!)) return true;
    indent = own;
  }
  return false;
}

for (const c of cases) {
  test(`TestValidateServiceCreate: ${c.name}`, (t) => {
    for (const [cluster, expected] of [
      [SINGLE, c.errors],
      [DUAL, c.dual ?? c.errors],
    ] as const) {
      const svc = makeValidService();
      c.tweak(svc);
      const { lines, text } = validateAs(svc, cluster);
      const messages = lines.filter((l) => !l.startsWith('  ')).map((l) => l.replace(/^svc\.yml:\d+:\d+: /, ''));
      // A Service is invalid under its own name, which some cases change.
      const wanted = expected.map((e) => (e.startsWith('Internal error occurred') ? e : `The Service "${svc.metadata.name as string}" is invalid: ${e}`));
      t.deepEqual(messages, wanted, cluster === DUAL ? 'on a dual-stack cluster' : 'on a single-stack cluster');
      for (const line of lines.filter((l) => !l.startsWith('  '))) t.true(positionFits(line, text), `position of: ${line}\n${text}`);
    }
  });
}

test('allocation: a Service that asks for a cluster IP another Service holds gets the allocator\'s answer', (t) => {
  const a = makeValidService();
  a.metadata.name = 'first';
  a.spec.clusterIP = '127.10.0.5';
  const b = makeValidService();
  b.metadata.name = 'second';
  b.spec.clusterIP = '127.10.0.5';
  const { lines } = validateAs(a, SINGLE, `---\n${stringify(b)}`);
  t.deepEqual(lines, [
    'svc.yml:39:14: The Service "second" is invalid: spec.clusterIPs: Invalid value: []string{"127.10.0.5"}: failed to allocate IP 127.10.0.5: provided IP is already allocated',
    '  (held by Service valid/first, applied earlier)',
  ]);
});

test('allocation stops the create: a nodePort out of range hides every validation error of that Service', (t) => {
  const s = makeValidService();
  nodePort(s);
  s.spec.ports[0].nodePort = 80;
  s.spec.ports[0].name = 'INVALID';
  s.spec.sessionAffinity = 'Sticky';
  const { lines } = validateAs(s);
  t.deepEqual(lines.map((l) => l.replace(/^svc\.yml:\d+:\d+: /, '')), [`${INVALID}spec.ports[0].nodePort: Invalid value: 80: ${RANGE}`]);
});

test('a failed create holds nothing: a later Service may take the nodePort the failed one asked for', (t) => {
  const bad = makeValidService();
  nodePort(bad);
  bad.metadata.name = 'bad';
  bad.spec.ports[0].nodePort = 30007;
  bad.spec.ports[0].name = 'INVALID';
  const good = makeValidService();
  nodePort(good);
  good.metadata.name = 'good';
  good.spec.ports[0].nodePort = 30007;
  const { lines } = validateAs(bad, SINGLE, `---\n${stringify(good)}`);
  t.deepEqual(lines.map((l) => l.replace(/^svc\.yml:\d+:\d+: /, '')), [`The Service "bad" is invalid: spec.ports[0].name: Invalid value: "INVALID": ${DNS1123_LABEL}`]);
});

test('defaults first: an empty protocol is TCP and targetPort defaults to port, as the routes show', (t) => {
  const s = makeValidService();
  s.spec.ports = [{ name: 'web', port: 8080 }];
  const parsed = parseManifests([{ file: 'svc.yml', text: stringify(s) }], SINGLE);
  t.deepEqual(parsed.problems, []);
  t.deepEqual(parsed.manifests!.services[0]!.ports.map((p) => [p.protocol, p.port, p.targetPort]), [['TCP', 8080, 8080]]);
});

test('workloads: containerPort 0 is a required value, and port names are unique per container', (t) => {
  const text = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: x, ports: [{containerPort: 0, name: http}, {containerPort: 81, name: http}]}]
`;
  const parsed = parseManifests([{ file: 'w.yml', text }], SINGLE);
  t.deepEqual(
    parsed.problems.map((p) => p.message),
    ['The Deployment "web" is invalid: spec.template.spec.containers[0].ports[0].containerPort: Required value', 'The Deployment "web" is invalid: spec.template.spec.containers[0].ports[1].name: Duplicate value: "http"'],
  );
});

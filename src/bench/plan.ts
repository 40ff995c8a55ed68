// plan.ts — the benchmark's fixed layout: which process listens where, and the manifest portlab runs with.

/** BENCH_PORTS are the backend's ports (the pod layer); every proxy listens on the same numbers at its own address. */
export const BENCH_PORTS = { echo: 5001, web: 5002, sink: 5003 } as const;

/** Addresses in 127.77.0.0/16: the bench's own loopback range, away from a portlab the user may be running. */
export const ADDR = {
  backend: '127.77.50.1',
  pipe: '127.77.60.1',
  httpProxy: '127.77.61.1',
  haproxy: '127.77.62.1',
  nginx: '127.77.63.1',
  viaService: { node: '127.77.0.1', serviceCidr: '127.77.10.0/24', podCidr: '127.77.244.0/24', admin: '127.77.0.250:10249' },
  direct: { node: '127.78.0.1', serviceCidr: '127.78.10.0/24', podCidr: '127.78.244.0/24' },
  /** The kernel modes' portlab processes, in the network namespace of a mode comparison. */
  nftables: { node: '127.81.0.1', serviceCidr: '127.81.10.0/24', podCidr: '127.81.244.0/24' },
  iptables: { node: '127.82.0.1', serviceCidr: '127.82.10.0/24', podCidr: '127.82.244.0/24' },
  /** The control-plane scale runs, one mode at a time: up to 10,000 Services need a /16 of cluster IPs. */
  scale: { node: '127.85.0.1', serviceCidr: '127.86.0.0/16', podCidr: '127.87.0.0/16' },
} as const;

/** Service ports in portlab: port and nodePort per kind of traffic. tcp-web carries HTTP at L4, http at L7. */
export const SERVICE = {
  echo: { name: 'echo', port: 8001, nodePort: 30001, target: BENCH_PORTS.echo },
  tcpWeb: { name: 'tcp-web', port: 8002, nodePort: 30002, target: BENCH_PORTS.web },
  http: { name: 'http', port: 8003, nodePort: 30003, target: BENCH_PORTS.web },
  sink: { name: 'sink', port: 8004, nodePort: 30004, target: BENCH_PORTS.sink },
} as const;

/** benchManifest is a selector-less Service whose EndpointSlice is the backend process: portlab forwards to it. */
export function benchManifest(): string {
  const ports = Object.values(SERVICE);
  return `apiVersion: v1
kind: Service
metadata: {name: bench}
spec:
  type: NodePort
  ports:
${ports.map((p) => `    - {name: ${p.name}, port: ${p.port}, targetPort: ${p.target}, nodePort: ${p.nodePort}}`).join('\n')}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-1
  labels: {kubernetes.io/service-name: bench}
addressType: IPv4
ports:
${ports.map((p) => `  - {name: ${p.name}, port: ${p.target}}`).join('\n')}
endpoints:
  - addresses: ["${ADDR.backend}"]
    conditions: {ready: true}
`;
}

/** scaleService is one ClusterIP Service of two ports (echo and web), selector-less, with the backend as its endpoint. */
function scaleService(i: number, extraEndpoint: boolean): string {
  const name = `svc-${String(i).padStart(5, '0')}`;
  const endpoints = [ADDR.backend, ...(extraEndpoint ? ['127.77.50.2'] : [])].map((a) => `{addresses: ["${a}"], conditions: {ready: true}}`).join(', ');
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  ports: [{name: echo, port: ${SERVICE.echo.port}, targetPort: ${BENCH_PORTS.echo}}, {name: web, port: ${SERVICE.tcpWeb.port}, targetPort: ${BENCH_PORTS.web}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: echo, port: ${BENCH_PORTS.echo}}, {name: web, port: ${BENCH_PORTS.web}}]
endpoints: [${endpoints}]
`;
}

/**
 * scaleManifests are `count` Services for the control-plane runs, in two files: svc-00000 alone (`changed`, the one
 * Service a change touches: `extra` gives it a second endpoint), and the rest. svc-N-1 is last in kube-proxy's order.
 */
export function scaleManifests(count: number, extra = false): { changed: string; rest: string } {
  const rest: string[] = [];
  for (let i = 1; i < count; i++) rest.push(scaleService(i, false));
  return { changed: scaleService(0, extra), rest: rest.join('---\n') };
}

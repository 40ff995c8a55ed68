// node-ports.ts — the nodePort allocator: ports the manifests leave out get one from --nodeport-range, and keep it.
import type { ServiceSpec } from '../manifest/objects.js';
import { servicePortKey, type DesiredState } from './state.js';

export interface NodePortPlan {
  /** byPort maps a Service port key (ns/name:port/PROTO) to its nodePort. */
  byPort: Map<string, number>;
  /** healthCheck maps a Service key (ns/name) to its healthCheckNodePort. */
  healthCheck: Map<string, number>;
}

/**
 * allocateNodePorts keeps every port the manifests ask for, then what it gave in the previous plan, and gives the
 * rest the lowest free port. The API server picks at random; portlab picks the same port on every run, so printed
 * commands stay valid, and an added Service never moves another Service's nodePort.
 */
export function allocateNodePorts(services: ServiceSpec[], range: [number, number], previous?: DesiredState): NodePortPlan {
  const [lo, hi] = range;
  const used = new Set<number>();
  const plan: NodePortPlan = { byPort: new Map(), healthCheck: new Map() };
  const external = services.filter((s) => s.type === 'NodePort' || s.type === 'LoadBalancer');
  for (const svc of external) {
    for (const p of svc.ports) if (p.nodePort !== undefined) used.add(p.nodePort);
    if (svc.healthCheckNodePort !== undefined) used.add(svc.healthCheckNodePort);
  }
  const before = new Map<string, number>();
  const beforeHealth = new Map<string, number>();
  for (const s of previous?.services ?? []) {
    for (const p of s.ports) if (p.nodePort !== undefined) before.set(p.key, p.nodePort);
    if (s.healthCheckNodePort !== undefined) beforeHealth.set(s.key, s.healthCheckNodePort);
  }
  let next = lo;
  const free = (): number => {
    while (next <= hi && used.has(next)) next++;
    if (next > hi) throw new Error(`no free nodePort left in ${lo}-${hi}; widen --nodeport-range or set nodePort in the manifest`);
    used.add(next);
    return next;
  };
  const sticky = (n: number | undefined): number | undefined => {
    if (n === undefined || n < lo || n > hi || used.has(n)) return undefined;
    used.add(n);
    return n;
  };
  // Two passes: every port that had a nodePort keeps it before any newcomer takes the lowest free one.
  const sorted = [...external].sort((a, b) => compare(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
  const wanting: { svc: ServiceSpec; key: string; port: number }[] = [];
  const wantsHealth = (svc: ServiceSpec) => svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local';
  for (const svc of sorted) {
    for (const p of svc.ports) {
      const key = servicePortKey(svc, p);
      const n = p.nodePort ?? sticky(before.get(key));
      if (n !== undefined) plan.byPort.set(key, n);
      else wanting.push({ svc, key, port: p.port });
    }
    const key = `${svc.namespace}/${svc.name}`;
    const health = wantsHealth(svc) ? (svc.healthCheckNodePort ?? sticky(beforeHealth.get(key))) : undefined;
    if (health !== undefined) plan.healthCheck.set(key, health);
  }
  for (const w of wanting) {
    // A TCP and a UDP port with the same number share one nodePort, as the API server's allocator gives them.
    const twin = w.svc.ports.find((p) => p.port === w.port && plan.byPort.has(servicePortKey(w.svc, p)));
    plan.byPort.set(w.key, twin ? plan.byPort.get(servicePortKey(w.svc, twin))! : free());
  }
  for (const svc of sorted) {
    const key = `${svc.namespace}/${svc.name}`;
    if (wantsHealth(svc) && !plan.healthCheck.has(key)) plan.healthCheck.set(key, free());
  }
  return plan;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

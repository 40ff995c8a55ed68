// pods.ts — workloads → the pods their controllers would make: replicas, names, labels, nodes; and stand-in pods for
// a manifest that holds only Services.
import type { ContainerPortSpec, Manifests, ServiceSpec } from '../manifest/objects.js';
import { LabelIndex } from './labels.js';
import { controllerLabels, podName, templateHash } from './names.js';
import type { NodeState } from './state.js';

export type StandinPolicy = 'auto' | 'always' | 'never';

/** PlannedPod is a pod before it has an address: what its controller decides. */
export interface PlannedPod {
  key: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ports: ContainerPortSpec[];
  owner: string;
  node: string;
  readinessDelayMs: number;
}

/**
 * planPods expands workloads into pods. Stand-in pods follow --standins: `auto` gives each selector Service one only
 * when the manifests hold no workload at all (like the seed); `always` gives one to each selector Service that
 * matches no workload; `never` gives none. A Service whose selector matches nothing then has no endpoints, as in a
 * cluster.
 */
export function planPods(manifests: Manifests, nodes: NodeState[], standins: StandinPolicy, notes: string[]): PlannedPod[] {
  const pods: PlannedPod[] = [];
  for (const w of manifests.workloads) {
    const hash = templateHash(w.template);
    const count = w.kind === 'DaemonSet' ? nodes.length : w.replicas;
    for (let i = 0; i < count; i++) {
      const name = podName(w.kind, w.name, hash, i);
      // A DaemonSet runs one pod on each node; spec.nodeName pins; the rest spread round robin.
      const node = w.kind === 'DaemonSet' ? nodes[i]! : (w.nodeName && nodes.find((n) => n.name === w.nodeName)) || nodes[i % nodes.length]!;
      pods.push({
        key: `${w.namespace}/${name}`,
        namespace: w.namespace,
        name,
        labels: { ...w.podLabels, ...controllerLabels(w.kind, w.name, hash, i, name) },
        ports: [...w.ports],
        owner: `${w.kind}/${w.name}`,
        node: node.name,
        readinessDelayMs: w.readinessDelayMs,
      });
    }
  }
  const wanting = standinServices(manifests, standins);
  for (const svc of wanting) pods.push(standinPod(svc, nodes[0]!));
  if (wanting.length > 0 && standins === 'auto') {
    notes.push(`stand-in pods: the manifests hold no workload, so ${wanting.length === 1 ? 'the Service with a selector gets' : `each of the ${wanting.length} Services with a selector gets`} one stand-in pod on its numeric targetPorts (--standins never: none)`);
  }
  return pods;
}

function standinServices(manifests: Manifests, standins: StandinPolicy): ServiceSpec[] {
  const selecting = manifests.services.filter((s) => s.selector && s.type !== 'ExternalName');
  if (standins === 'never') return [];
  if (standins === 'auto') return manifests.workloads.length === 0 ? selecting : [];
  const workloads = new LabelIndex(manifests.workloads, (w) => w.podLabels);
  return selecting.filter((s) => workloads.select(s.namespace, s.selector!).length === 0);
}

/** standinPod listens on the Service's numeric targetPorts; a named one has no number to listen on. */
function standinPod(svc: ServiceSpec, node: NodeState): PlannedPod {
  const ports: ContainerPortSpec[] = [];
  for (const p of svc.ports) {
    if (typeof p.targetPort !== 'number' || p.protocol === 'SCTP') continue;
    // Two Service ports may share a targetPort; the pod listens on it once.
    if (ports.some((cp) => cp.containerPort === p.targetPort && cp.protocol === p.protocol)) continue;
    ports.push({ containerPort: p.targetPort, protocol: p.protocol, name: p.name || undefined });
  }
  const name = `${svc.name}-standin`;
  return { key: `${svc.namespace}/${name}`, namespace: svc.namespace, name, labels: { ...svc.selector }, ports, owner: `Service/${svc.name}`, node: node.name, readinessDelayMs: 0 };
}


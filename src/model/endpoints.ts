// endpoints.ts — which address:port each Service port forwards to, as the endpoints controller and kube-proxy decide.
import type { EndpointSliceSpec, ServicePortSpec, ServiceSpec } from '../manifest/objects.js';
import { formatSelector } from './labels.js';
import type { EndpointState, PodState } from './state.js';

/**
 * podEndpoints resolves targetPort per pod as the endpoints controller does: a number is used as is, a name goes
 * through that pod's containerPorts, and a pod without the name is not an endpoint. The API server accepts such a
 * Service, so it is a warning: the port simply has no endpoints on those pods.
 */
export function podEndpoints(svc: ServiceSpec, p: ServicePortSpec, selected: PodState[], warnings: string[]): EndpointState[] {
  const out: EndpointState[] = [];
  for (const pod of selected) {
    const port = typeof p.targetPort === 'number' ? p.targetPort : pod.ports.find((cp) => cp.name === p.targetPort && cp.protocol === p.protocol)?.containerPort;
    // The EndpointSlice controller marks an endpoint ready when the pod is, or when the Service publishes not-ready
    // addresses; a pod that is down has no address to publish.
    if (port === undefined) continue;
    const ready = pod.running && (pod.ready || svc.publishNotReadyAddresses);
    out.push({ ip: pod.ip, port, ready, serving: ready, terminating: false, node: pod.node, podKey: pod.key, podName: pod.name });
  }
  if (typeof p.targetPort === 'string' && selected.length > 0 && out.length < selected.length) {
    const without = selected.filter((pod) => !out.some((e) => e.podKey === pod.key));
    const owners = [...new Set(without.map((pod) => pod.owner))].join(', ');
    warnings.push(
      `${svc.source.at(['spec', 'ports', p.index, 'targetPort'])}: Service "${svc.name}" port ${p.name || p.port}: targetPort "${p.targetPort}" names no ${p.protocol} containerPort of ${without.length} selected pod(s) (${owners}), so they are not its endpoints; name a containerPort "${p.targetPort}" or use a number`,
    );
  }
  return out;
}

/**
 * sliceEndpoints reads the EndpointSlices (and Endpoints) of a Service without a selector. Ports match by name, as
 * kube-proxy matches them: a slice port named "web" does not serve a Service port named "http".
 */
export function sliceEndpoints(p: ServicePortSpec, slices: EndpointSliceSpec[]): EndpointState[] {
  const out: EndpointState[] = [];
  for (const slice of slices) {
    const match = slice.ports.find((sp) => sp.protocol === p.protocol && sp.name === p.name);
    if (!match) continue;
    for (const e of slice.endpoints) out.push({ ip: e.address, port: match.port, ready: e.ready, serving: e.serving, terminating: e.terminating, node: e.nodeName });
  }
  return out;
}

/** unmatchedSelector is the warning for a selector that matches no pod, with the labels pods here do have. */
export function unmatchedSelector(svc: ServiceSpec, podsInNamespace: PodState[]): string {
  const keys = Object.keys(svc.selector!);
  const seen = new Set<string>();
  for (const pod of podsInNamespace) {
    const shared = keys.filter((k) => k in pod.labels);
    const labels = shared.length > 0 ? Object.fromEntries(shared.map((k) => [k, pod.labels[k]!])) : pod.labels;
    if (Object.keys(labels).length > 0) seen.add(formatSelector(labels));
  }
  const here = seen.size === 0 ? `there is no pod in namespace ${svc.namespace}` : `pods here have ${[...seen].slice(0, 5).join('; ')}${seen.size > 5 ? '; …' : ''}`;
  return `${svc.source.at(['spec', 'selector'])}: Service "${svc.name}" selector ${formatSelector(svc.selector!)} matches no pod, so it has no endpoints (connections are refused); ${here}`;
}

// diff.ts — diff(previous, next): the operations that turn the running table into the desired one. Pure: the proxier
// applies them, and the tests check them without a socket.
import { printOf } from './print.js';
import type { DesiredState, ListenerState, PodState } from './state.js';

/** The tables a diff reads: what listens, and which pods run. */
export type Table = Pick<DesiredState, 'listeners' | 'pods'>;

export type SyncOp =
  /** start-pod starts a stand-in pod (or restarts a killed one). */
  | { op: 'start-pod'; pod: PodState }
  /** update-pod hands a running pod its new spec: added ports open, removed ports close, the rest keep their connections. */
  | { op: 'update-pod'; pod: PodState }
  /** stop-pod stops a pod: gracefully when it left the manifests, as a crash (connections reset) when it was killed. */
  | { op: 'stop-pod'; pod: PodState; crash: boolean }
  /** open opens a listener that was not there. */
  | { op: 'open'; listener: ListenerState }
  /** set-route hands an open listener a new route; its socket and open connections stay. */
  | { op: 'set-route'; listener: ListenerState }
  /** close stops a listener accepting; its open connections drain. `swap` is set when a new listener takes its address. */
  | { op: 'close'; listener: ListenerState; swap: boolean };

/** identity is what a listener is, beyond its route: two listeners with the same key and identity are one socket. */
function identity(l: ListenerState): string {
  return `${l.layer}|${l.mode}|${l.servicePort}|${l.serviceKey}`;
}

function podIdentity(p: PodState): string {
  return `${p.ip}|${p.node}`;
}


/**
 * diff lists the operations in the order they must be applied: pods start before any route points at them, a
 * swapped listener closes before its replacement opens on the same address, service listeners open before the node
 * listeners that forward to them, routes change before removed listeners close, and pods stop last, once no route
 * sends them anything.
 */
export function diff(previous: Table | undefined, next: Table): SyncOp[] {
  const starts: SyncOp[] = [];
  const updates: SyncOp[] = [];
  const stops: SyncOp[] = [];
  const prevPods = new Map((previous?.pods ?? []).map((p) => [p.key, p]));
  for (const pod of next.pods) {
    const before = prevPods.get(pod.key);
    prevPods.delete(pod.key);
    if (before === pod) continue;
    if (!before || podIdentity(before) !== podIdentity(pod)) {
      if (before?.running) stops.push({ op: 'stop-pod', pod: before, crash: false });
      if (pod.running) starts.push({ op: 'start-pod', pod });
    } else if (before.running && !pod.running) stops.push({ op: 'stop-pod', pod: before, crash: true });
    else if (!before.running && pod.running) starts.push({ op: 'start-pod', pod });
    else if (printOf(before) !== printOf(pod)) updates.push({ op: 'update-pod', pod });
  }
  for (const gone of prevPods.values()) if (gone.running) stops.push({ op: 'stop-pod', pod: gone, crash: false });

  const swaps: SyncOp[] = [];
  const opens: SyncOp[] = [];
  const routes: SyncOp[] = [];
  const closes: SyncOp[] = [];
  const prevListeners = new Map((previous?.listeners ?? []).map((l) => [l.key, l]));
  for (const l of next.listeners) {
    const before = prevListeners.get(l.key);
    prevListeners.delete(l.key);
    if (before === l) continue;
    if (!before) opens.push({ op: 'open', listener: l });
    else if (identity(before) !== identity(l)) {
      swaps.push({ op: 'close', listener: before, swap: true });
      opens.push({ op: 'open', listener: l });
    } else if (printOf(before.route) !== printOf(l.route)) routes.push({ op: 'set-route', listener: l });
  }
  for (const gone of prevListeners.values()) closes.push({ op: 'close', listener: gone, swap: false });
  // Service and load-balancer listeners first: a nodePort never forwards to a service port that is not there yet.
  const inner = (op: SyncOp) => op.op === 'open' && (op.listener.layer === 'service' || op.listener.layer === 'loadbalancer');
  opens.sort((a, b) => Number(inner(b)) - Number(inner(a)));
  return [...starts, ...updates, ...swaps, ...opens, ...routes, ...closes, ...stops];
}

/** describeOps counts the operations of each kind, for the sync summary. */
export function describeOps(ops: SyncOp[]): Record<SyncOp['op'], number> {
  const count = { 'start-pod': 0, 'update-pod': 0, 'stop-pod': 0, open: 0, 'set-route': 0, close: 0 };
  for (const op of ops) count[op.op]++;
  return count;
}

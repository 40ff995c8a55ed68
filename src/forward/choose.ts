// choose.ts — one endpoint choice per connection (L4) or request (L7), from a route that is plain data: random
// (iptables) or round-robin (userspace, IPVS rr), ClientIP affinity, and the Local traffic policies.
import type { Flow } from './flow.js';
import { DROP, type Route, type Upstream } from './route.js';

/**
 * Choices is the run-time memory of one Service port's choices, shared by its listeners: the round-robin turn and
 * the affinity table. It outlives route changes, as kube-proxy's affinity state outlives an endpoints update.
 */
export interface Choices {
  turn: number;
  affinity: Map<string, { address: string; lastUsed: number }>;
  random: () => number;
  now: () => number;
}

/** seededRandom is mulberry32: a small, fast PRNG, so `--seed N` makes random balancing repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function newChoices(random: () => number, now: () => number = Date.now): Choices {
  return { turn: 0, affinity: new Map(), random, now };
}

/**
 * choose returns where one connection or request goes: an upstream, undefined when there is no ready endpoint
 * (reject fast, as kube-proxy's REJECT), or DROP (a Local policy on a node without a local endpoint).
 */
export function choose(route: Route, flow: Flow, choices: Choices): Upstream | undefined | typeof DROP {
  if (route.layer === 'node') {
    flow.entryNode = route.node;
    if (route.externalLocal) {
      // kube-proxy DROPs on a node without a local endpoint; the client sees a timeout, not a refusal.
      if (!route.hasLocalEndpoint) return DROP;
      flow.localOnly = true;
    }
    if (route.endpoints.length === 0) return undefined;
    if (route.serviceHop) return route.serviceHop;
    return pick(route, flow.clientAddress, route.externalLocal ? route.node : undefined, choices);
  }
  let localNode: string | undefined;
  if (flow.localOnly) localNode = flow.entryNode;
  else if (route.layer === 'service' && flow.entryNode === undefined && route.internalLocal) localNode = flow.clientNode ?? route.hostNode;
  const up = pick(route, flow.clientAddress, localNode, choices);
  // A Local policy with no endpoint on the node DROPs in kube-proxy; anything else with none is REJECTed.
  if (!up) return localNode !== undefined && route.endpoints.length > 0 ? DROP : undefined;
  return up;
}

function pick(route: Route, client: string, localNode: string | undefined, choices: Choices): Upstream | undefined {
  const candidates = localNode === undefined ? route.endpoints : route.endpoints.filter((e) => e.node === localNode);
  if (candidates.length === 0) return undefined;
  if (route.affinityTimeoutMs > 0) {
    const now = choices.now();
    const held = choices.affinity.get(client);
    if (held && now - held.lastUsed <= route.affinityTimeoutMs) {
      const up = candidates.find((e) => e.address === held.address);
      if (up) {
        held.lastUsed = now;
        return up;
      }
    }
    const up = next(candidates, route, choices);
    if (choices.affinity.size >= MAX_AFFINITY_ENTRIES) sweep(choices, route.affinityTimeoutMs, now);
    choices.affinity.set(client, { address: up.address, lastUsed: now });
    return up;
  }
  return next(candidates, route, choices);
}

// The affinity table is swept of expired clients when it grows this large, so many clients cost bounded memory.
const MAX_AFFINITY_ENTRIES = 10_000;

function sweep(choices: Choices, timeoutMs: number, now: number): void {
  for (const [client, held] of choices.affinity) if (now - held.lastUsed > timeoutMs) choices.affinity.delete(client);
  if (choices.affinity.size >= MAX_AFFINITY_ENTRIES) choices.affinity.clear();
}

function next(candidates: Upstream[], route: Route, choices: Choices): Upstream {
  if (candidates.length === 1) return candidates[0]!;
  if (route.balance === 'round-robin') return candidates[choices.turn++ % candidates.length]!;
  return candidates[Math.floor(choices.random() * candidates.length)]!;
}

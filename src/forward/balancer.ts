// balancer.ts — endpoint choice per Service port: random (iptables) or round-robin (userspace, IPVS rr), plus ClientIP affinity.
import type { EndpointState, ServicePortState, ServiceState } from '../model/desired-state.js';

export type BalanceMode = 'random' | 'round-robin';

interface AffinityEntry {
  endpoint: EndpointState;
  lastUsed: number;
}

/**
 * ServicePortBalancer holds the live endpoints of one Service port. sync() swaps endpoints in place, so open
 * listeners pick from the new set without being reopened.
 */
export class ServicePortBalancer {
  private ready: EndpointState[] = [];
  private rr = 0;
  private readonly affinity = new Map<string, AffinityEntry>();
  private affinityTimeoutMs = 0;
  /** down holds endpoints withdrawn at run time (a killed pod), keyed ip:port, until sync() says otherwise. */
  private readonly down = new Set<string>();
  private all: EndpointState[] = [];

  constructor(
    readonly key: string,
    private readonly mode: BalanceMode,
  ) {}

  update(sp: ServicePortState, svc: Pick<ServiceState, 'sessionAffinity' | 'affinityTimeoutSeconds'>): void {
    this.all = sp.endpoints;
    this.affinityTimeoutMs = svc.sessionAffinity === 'ClientIP' ? svc.affinityTimeoutSeconds * 1000 : 0;
    if (this.affinityTimeoutMs === 0) this.affinity.clear();
    this.recompute();
  }

  /** setDown withdraws or restores an endpoint at run time, as the endpoints controller does for an unready pod. */
  setDown(ip: string, port: number, down: boolean): void {
    const key = `${ip}:${port}`;
    if (down) this.down.add(key);
    else this.down.delete(key);
    this.recompute();
  }

  private recompute(): void {
    this.ready = this.all.filter((e) => e.ready && !this.down.has(`${e.ip}:${e.port}`));
    // An affinity entry whose endpoint is gone is dropped, as kube-proxy's affinity state is on endpoint change.
    for (const [client, entry] of this.affinity) if (!this.ready.includes(entry.endpoint)) this.affinity.delete(client);
  }

  get endpoints(): readonly EndpointState[] {
    return this.ready;
  }

  hasLocal(node: string): boolean {
    return this.ready.some((e) => e.node === node);
  }

  /** pick chooses an endpoint for a client; `localNode` applies a Local traffic policy (only that node's endpoints). */
  pick(clientIP: string, localNode?: string): EndpointState | undefined {
    const candidates = localNode === undefined ? this.ready : this.ready.filter((e) => e.node === localNode);
    if (candidates.length === 0) return undefined;
    if (this.affinityTimeoutMs > 0) {
      const now = Date.now();
      const held = this.affinity.get(clientIP);
      if (held && now - held.lastUsed <= this.affinityTimeoutMs && candidates.includes(held.endpoint)) {
        held.lastUsed = now;
        return held.endpoint;
      }
      const chosen = this.choose(candidates);
      this.affinity.set(clientIP, { endpoint: chosen, lastUsed: now });
      return chosen;
    }
    return this.choose(candidates);
  }

  private choose(candidates: EndpointState[]): EndpointState {
    if (candidates.length === 1) return candidates[0]!;
    if (this.mode === 'round-robin') return candidates[this.rr++ % candidates.length]!;
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  }
}

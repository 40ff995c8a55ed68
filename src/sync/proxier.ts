// proxier.ts — sync(): diff the running table against the desired one, and apply the operations. The only code that
// opens and closes listeners and stand-in pods.
import type { ConnectionBudget } from '../net/budget.js';
import { performance } from 'node:perf_hooks';
import { newChoices, seededRandom, type Choices } from '../forward/choose.js';
import { Conntrack } from '../forward/flow.js';
import { HttpForwarder } from '../forward/http.js';
import { ProxyAdapter } from '../forward/http-proxy-adapter.js';
import type { Forwarder } from '../forward/route.js';
import { TcpForwarder } from '../forward/tcp.js';
import { UdpForwarder } from '../forward/udp.js';
import { checkClaims, claims, type DesiredState, type ListenerState, type PodState } from '../model/desired-state.js';
import { diff, type SyncOp, type Table } from '../model/diff.js';
import type { Observers } from '../observe/observer.js';
import { StandinPod } from '../pods/standin.js';
import { HealthCheckServer } from './healthcheck.js';
import { listenError } from './listen-errors.js';

export interface ProxierOptions {
  upstreamTimeoutMs: number;
  headersTimeoutMs: number;
  /** bodyTimeoutMs: L7 clients must send their whole request in this time (0: no limit). */
  bodyTimeoutMs?: number;
  /** upstreamConnections caps L7 connections per upstream; as many requests may wait, then 503. */
  upstreamConnections?: number;
  udpTimeoutMs: number;
  drainTimeoutMs: number;
  maxConnections?: number;
  /** budget bounds the connections of every listener together, by the descriptor limit. */
  budget?: ConnectionBudget;
  /** seed makes random balancing repeatable; without it, choices use Math.random. */
  seed?: number;
  /** checkClaimsEverySync is on when addresses can clash (--addresses shared); otherwise the first sync checks. */
  checkClaimsEverySync: boolean;
  shared: boolean;
  /** portOffset is --port-offset, for the stand-in pods' listeners (listeners.ts applies it to the rest). */
  portOffset?: number;
}

interface OpenListener {
  spec: ListenerState;
  forwarder: Forwarder<never>;
}

interface RunningPod {
  spec: PodState;
  pod: StandinPod;
}

export interface SyncSummary {
  opened: number;
  closed: number;
  kept: number;
  routesChanged: number;
  podsStarted: number;
  podsStopped: number;
  /** startedPods are the keys of the pods this sync started, so their readiness delays can begin. */
  startedPods: PodState[];
  durationMs: number;
  /** kernel is what the kernel data plane did after this sync, in --proxy-mode nftables|iptables. */
  kernel?: { mode: string; durationMs: number; changed: number };
}

/** phase orders the operations: each phase runs in parallel, and the next starts when it is done. */
function phase(op: SyncOp): number {
  switch (op.op) {
    case 'start-pod':
      return 0;
    case 'update-pod':
      return 1;
    case 'close':
      return op.swap ? 2 : 6;
    case 'open':
      return op.listener.layer === 'service' || op.listener.layer === 'loadbalancer' ? 3 : 4;
    case 'set-route':
      return 5;
    case 'stop-pod':
      return 7;
  }
}

/** Proxier owns every socket portlab opens. Its maps are keyed like kube-proxy's: address:port/PROTO and ns/name. */
export class Proxier {
  readonly conntrack = new Conntrack();
  private readonly proxy: ProxyAdapter;
  private readonly listeners = new Map<string, OpenListener>();
  private readonly pods = new Map<string, RunningPod>();
  private readonly choices = new Map<string, Choices>();
  private readonly random: () => number;
  private current?: DesiredState;
  /** syncing serialises syncs: one that arrives during another waits for it. */
  private syncing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: ProxierOptions,
    private readonly observers: Observers,
  ) {
    this.proxy = new ProxyAdapter({ upstreamTimeoutMs: options.upstreamTimeoutMs, upstreamConnections: options.upstreamConnections, conntrack: this.conntrack });
    this.random = options.seed === undefined ? Math.random : seededRandom(options.seed);
  }

  get state(): DesiredState | undefined {
    return this.current;
  }

  /** running is the table as it stands: the listeners that are open and the pods that run. */
  private running(): Table {
    return { listeners: [...this.listeners.values()].map((l) => l.spec), pods: [...this.pods.values()].map((p) => p.spec) };
  }

  /** sync makes the sockets match `state`. On failure nothing of the new state stays open and the old one keeps running. */
  sync(state: DesiredState): Promise<SyncSummary> {
    const run = this.syncing.then(() => this.syncNow(state));
    this.syncing = run.catch(() => {});
    return run;
  }

  private async syncNow(state: DesiredState): Promise<SyncSummary> {
    const started = performance.now();
    // With distinct, non-overlapping address blocks no two owners can want one address:port, so the full check
    // runs once; with shared addresses it runs on every sync.
    if (this.options.checkClaimsEverySync || !this.current) checkClaims(claims(state), this.options.shared);
    const summary: SyncSummary = { opened: 0, closed: 0, kept: 0, routesChanged: 0, podsStarted: 0, podsStopped: 0, startedPods: [], durationMs: 0 };
    const ops = diff(this.running(), state);
    try {
      await this.apply(ops, summary);
    } catch (err) {
      // Put back what was running: the previous state's table, or nothing at the first sync.
      await this.apply(diff(this.running(), this.current ?? { listeners: [], pods: [] }), undefined).catch(() => {});
      throw err;
    }
    this.current = state;
    summary.kept = state.listeners.length - summary.opened;
    if (summary.opened + summary.closed + summary.podsStarted + summary.podsStopped > 0) this.countListeners();
    if (summary.closed > 0) {
      const inUse = new Set(state.listeners.map((l) => l.servicePort));
      for (const key of this.choices.keys()) if (!inUse.has(key)) this.choices.delete(key);
    }
    summary.durationMs = performance.now() - started;
    this.observers.metrics.syncDuration.observe(summary.durationMs / 1000);
    this.observers.metrics.syncLastTimestamp.set(Date.now() / 1000);
    return summary;
  }

  /** apply runs the operations phase by phase; the first failure stops it and is thrown. */
  private async apply(ops: SyncOp[], summary: SyncSummary | undefined): Promise<void> {
    let i = 0;
    while (i < ops.length) {
      const p = phase(ops[i]!);
      let j = i;
      while (j < ops.length && phase(ops[j]!) === p) j++;
      const results = await Promise.allSettled(ops.slice(i, j).map((op) => this.applyOne(op, summary)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      i = j;
    }
  }

  private async applyOne(op: SyncOp, summary: SyncSummary | undefined): Promise<void> {
    switch (op.op) {
      case 'start-pod': {
        const pod = new StandinPod(op.pod, this.options.portOffset);
        try {
          await pod.start();
        } catch (err) {
          const port = (err as { port?: number }).port ?? 0;
          const cp = op.pod.ports.find((p) => p.containerPort === port);
          throw listenError(err, { address: op.pod.ip, port, protocol: cp?.protocol ?? 'TCP', owner: `pod ${op.pod.key}`, field: `containerPort ${port}` });
        }
        this.pods.set(op.pod.key, { spec: op.pod, pod });
        if (summary) {
          summary.podsStarted++;
          summary.startedPods.push(op.pod);
        }
        return;
      }
      case 'update-pod': {
        const running = this.pods.get(op.pod.key)!;
        await running.pod.updatePorts(op.pod);
        running.spec = op.pod;
        return;
      }
      case 'stop-pod': {
        const running = this.pods.get(op.pod.key);
        this.pods.delete(op.pod.key);
        if (running) await (op.crash ? running.pod.kill() : running.pod.stop());
        if (summary) summary.podsStopped++;
        return;
      }
      case 'open': {
        const forwarder = this.createForwarder(op.listener);
        try {
          await forwarder.listen(op.listener.address, op.listener.port);
        } catch (err) {
          await forwarder.close(0).catch(() => {});
          throw listenError(err, op.listener);
        }
        this.listeners.set(op.listener.key, { spec: op.listener, forwarder });
        if (summary) summary.opened++;
        return;
      }
      case 'set-route': {
        const open = this.listeners.get(op.listener.key)!;
        open.forwarder.setRoute(op.listener.route as never);
        open.spec = op.listener;
        if (summary) summary.routesChanged++;
        return;
      }
      case 'close': {
        const open = this.listeners.get(op.listener.key);
        this.listeners.delete(op.listener.key);
        // The socket stops listening at once, so a swapped listener's replacement can bind; connections drain.
        if (open) void open.forwarder.close(this.options.drainTimeoutMs);
        if (summary) summary.closed++;
        return;
      }
    }
  }

  private choicesFor(servicePort: string): Choices {
    let c = this.choices.get(servicePort);
    if (!c) {
      c = newChoices(this.random);
      this.choices.set(servicePort, c);
    }
    return c;
  }

  private createForwarder(spec: ListenerState): Forwarder<never> {
    if (spec.layer === 'health') return new HealthCheckServer(spec.route) as Forwarder<never>;
    const observer = this.observers.forListener(spec.layer, spec.servicePort);
    const choices = this.choicesFor(spec.servicePort);
    const admission = { maxConnections: this.options.maxConnections, budget: this.options.budget };
    if (spec.mode === 'udp') return new UdpForwarder(spec.route, choices, this.conntrack, observer, this.options.udpTimeoutMs, this.options.budget) as Forwarder<never>;
    if (spec.mode === 'http') {
      return new HttpForwarder(spec.route, choices, this.conntrack, this.proxy, observer, { headersTimeoutMs: this.options.headersTimeoutMs, bodyTimeoutMs: this.options.bodyTimeoutMs ?? 0, admission }) as Forwarder<never>;
    }
    return new TcpForwarder(spec.route, choices, this.conntrack, observer, admission) as Forwarder<never>;
  }

  private countListeners(): void {
    const byLayer: Record<string, number> = { node: 0, service: 0, loadbalancer: 0, health: 0 };
    for (const l of this.listeners.values()) byLayer[l.spec.layer] = (byLayer[l.spec.layer] ?? 0) + 1;
    for (const [layer, n] of Object.entries(byLayer)) this.observers.metrics.listeners.set({ layer }, n);
    let podPorts = 0;
    for (const p of this.pods.values()) podPorts += p.spec.ports.length;
    this.observers.metrics.listeners.set({ layer: 'pod' }, podPorts);
  }

  /** listPods lists the stand-in pods that run now. */
  listPods(): StandinPod[] {
    return [...this.pods.values()].map((r) => r.pod);
  }

  /** close stops accepting everywhere, drains up to drainMs, then closes the rest: listeners first, pods last. */
  async close(drainMs: number): Promise<void> {
    await this.syncing.catch(() => {});
    const all = [...this.listeners.values()];
    this.listeners.clear();
    // Outer hops drain first: their requests still travel over portlab's own service hop, which keeps serving (and
    // accepting) until they are done, so a keep-alive client of a nodePort gets its answer, not a 502.
    const outer = all.filter((l) => l.spec.layer !== 'service');
    await Promise.all(outer.map((l) => l.forwarder.close(drainMs)));
    await Promise.all(all.filter((l) => l.spec.layer === 'service').map((l) => l.forwarder.close(drainMs)));
    const pods = [...this.pods.values()];
    this.pods.clear();
    await Promise.all(pods.map((p) => p.pod.stop()));
    this.proxy.close();
  }

  get openListeners(): number {
    return this.listeners.size;
  }
}

// proxier.ts — sync(): the only code that opens and closes listeners and stand-in pods. Desired state in, sockets out.
import { performance } from 'node:perf_hooks';
import { ServicePortBalancer, type BalanceMode } from '../forward/balancer.js';
import { Conntrack, type Flow, type Layer } from '../forward/flow.js';
import { HttpForwarder } from '../forward/http.js';
import { ProxyAdapter } from '../forward/http-proxy-adapter.js';
import { DROP, type Route, type Upstream } from '../forward/route.js';
import { TcpForwarder } from '../forward/tcp.js';
import { UdpForwarder } from '../forward/udp.js';
import { checkClaims, claims, type Claim, type DesiredState, type EndpointState, type NodeState, type ServicePortState, type ServiceState } from '../model/desired-state.js';
import type { Observers } from '../observe/observer.js';
import { StandinPod } from '../pods/standin.js';
import { HealthCheckServer } from './healthcheck.js';
import { listenError } from './listen-errors.js';

export interface ProxierOptions {
  balance: BalanceMode;
  nodeportHop: 'via-service' | 'direct';
  upstreamTimeoutMs: number;
  headersTimeoutMs: number;
  udpTimeoutMs: number;
  idleTimeoutMs: number;
  drainTimeoutMs: number;
  maxConnections?: number;
  /** checkClaimsEverySync is on when addresses can clash (--addresses shared); otherwise the first sync checks. */
  checkClaimsEverySync: boolean;
}

type Forwarder = TcpForwarder | HttpForwarder | UdpForwarder | HealthCheckServer;

/** ListenerSpec is one listener the desired state asks for. `key` is stable; a changed `identity` means swap. */
interface ListenerSpec {
  key: string;
  /** serviceKey is the Service that owns the listener; a sync only revisits listeners of changed Services. */
  serviceKey: string;
  identity: string;
  claim: Claim;
  layer: Layer | 'health';
  mode: 'tcp' | 'http' | 'udp' | 'health';
  /** routeSig names everything the route depends on; a kept listener gets a new route only when it changes. */
  routeSig: string;
  makeRoute?: () => Route;
  health?: { svc: ServiceState; node: NodeState };
}

interface OpenListener {
  spec: ListenerSpec;
  forwarder: Forwarder;
}

interface RunningPod {
  identity: string;
  pod: StandinPod;
}

export interface SyncSummary {
  opened: number;
  closed: number;
  kept: number;
  podsStarted: number;
  podsStopped: number;
  durationMs: number;
}

/** Proxier owns every socket portlab opens. Its maps are keyed like kube-proxy's: ns/name:port/PROTO and address:port/PROTO. */
export class Proxier {
  readonly conntrack = new Conntrack();
  private readonly proxy: ProxyAdapter;
  private readonly balancers = new Map<string, ServicePortBalancer>();
  private readonly listeners = new Map<string, OpenListener>();
  private readonly pods = new Map<string, RunningPod>();
  /** syncedServices holds the ServiceState each Service was last synced from; the plan reuses unchanged objects. */
  private readonly syncedServices = new Map<string, ServiceState>();
  private syncedNodes = '';
  private readonly serviceListeners = new Map<string, string[]>();
  private current?: DesiredState;
  /** syncing serialises syncs: reloads that arrive during one wait for it, then the latest wins. */
  private syncing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: ProxierOptions,
    private readonly observers: Observers,
  ) {
    this.proxy = new ProxyAdapter({ upstreamTimeoutMs: options.upstreamTimeoutMs, conntrack: this.conntrack });
  }

  get state(): DesiredState | undefined {
    return this.current;
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
    if (this.options.checkClaimsEverySync || !this.current) checkClaims(claims(state));
    const summary: SyncSummary = { opened: 0, closed: 0, kept: 0, podsStarted: 0, podsStopped: 0, durationMs: 0 };
    const previous = this.current;
    const addedPods: string[] = [];
    const addedListeners: string[] = [];
    const touched: string[] = [];
    try {
      await this.syncPods(state, summary, addedPods);

      // Services: like kube-proxy's change tracker, only a Service whose state changed is looked at again.
      const nodes = JSON.stringify(state.nodes);
      if (nodes !== this.syncedNodes) this.syncedServices.clear();
      this.syncedNodes = nodes;
      const seen = new Set<string>();
      const wanted = new Map<string, ListenerSpec>();
      for (const svc of state.services) {
        seen.add(svc.key);
        if (this.syncedServices.get(svc.key) === svc) {
          summary.kept += this.serviceListeners.get(svc.key)?.length ?? 0;
          continue;
        }
        touched.push(svc.key);
        this.syncedServices.set(svc.key, svc);
        this.updateBalancers(svc);
        const specs = this.listenerSpecs(svc, state.nodes);
        for (const spec of specs) wanted.set(spec.key, spec);
        this.serviceListeners.set(svc.key, specs.map((spec) => spec.key));
      }
      for (const key of [...this.syncedServices.keys()]) {
        if (seen.has(key)) continue;
        touched.push(key);
        this.syncedServices.delete(key);
        this.serviceListeners.delete(key);
        for (const b of this.balancers.keys()) if (b.startsWith(`${key}:`)) this.balancers.delete(b);
      }

      const toOpen: ListenerSpec[] = [];
      const touchedSet = new Set(touched);
      for (const [key, open] of touched.length === 0 ? [] : this.listeners) {
        if (!touchedSet.has(open.spec.serviceKey)) continue;
        const want = wanted.get(key);
        if (!want || want.identity !== open.spec.identity) {
          this.listeners.delete(key);
          this.retire(open);
          summary.closed++;
        }
      }
      for (const spec of wanted.values()) {
        const open = this.listeners.get(spec.key);
        if (!open) {
          toOpen.push(spec);
          continue;
        }
        // Unchanged listener: keep the socket and its connections; swap the route only if what it depends on changed.
        if (spec.makeRoute && open.spec.routeSig !== spec.routeSig && 'route' in open.forwarder) open.forwarder.route = spec.makeRoute();
        if (spec.health && open.forwarder instanceof HealthCheckServer) open.forwarder.balancers = this.balancersOf(spec.health.svc);
        open.spec = spec;
        summary.kept++;
      }
      await this.openAll(toOpen, summary, addedListeners);
    } catch (err) {
      await this.rollBack(addedListeners, addedPods);
      // Forget what this sync learned, then reopen what was swapped out, so the running config stays whole.
      for (const key of touched) this.syncedServices.delete(key);
      if (previous) await this.syncNow(previous).catch(() => {});
      throw err;
    }
    this.current = state;
    if (summary.opened + summary.closed + summary.podsStarted + summary.podsStopped > 0) this.countListeners();
    summary.durationMs = performance.now() - started;
    this.observers.metrics.syncDuration.observe(summary.durationMs / 1000);
    this.observers.metrics.syncLastTimestamp.set(Date.now() / 1000);
    return summary;
  }

  /** syncPods stops pods that went away, reconciles the ports of pods that stay, and starts new ones in parallel. */
  private async syncPods(state: DesiredState, summary: SyncSummary, addedPods: string[]): Promise<void> {
    const wantedPods = new Map(state.pods.map((p) => [p.key, p]));
    for (const [key, running] of this.pods) {
      const want = wantedPods.get(key);
      if (want === running.pod.spec) continue; // the plan reuses unchanged pods' objects
      if (!want || podIdentity(want) !== running.identity) {
        this.pods.delete(key);
        this.withdrawPod(running.pod);
        await running.pod.stop();
        summary.podsStopped++;
      } else if (JSON.stringify(want.ports) !== JSON.stringify(running.pod.spec.ports)) {
        await running.pod.updatePorts(want);
      } else {
        running.pod.spec = want;
      }
    }
    const starting = [...wantedPods].filter(([key]) => !this.pods.has(key));
    const started = await Promise.allSettled(
      starting.map(async ([key, pod]) => {
        const standin = new StandinPod(pod);
        await standin.start();
        this.pods.set(key, { identity: podIdentity(pod), pod: standin });
        addedPods.push(key);
        summary.podsStarted++;
      }),
    );
    started.forEach((result, i) => {
      if (result.status === 'fulfilled') return;
      const pod = starting[i]![1];
      const port = (result.reason as { port?: number }).port ?? 0;
      const cp = pod.ports.find((p) => p.containerPort === port);
      throw listenError(result.reason, { address: pod.ip, port, protocol: cp?.protocol ?? 'TCP', owner: `pod ${pod.key}`, field: `containerPort ${port}` });
    });
  }

  /** openListeners opens the service layer before the node layer, so no nodePort forwards to a port not there yet. */
  private async openAll(toOpen: ListenerSpec[], summary: SyncSummary, addedListeners: string[]): Promise<void> {
    for (const phase of [['service', 'loadbalancer'], ['node', 'health']]) {
      const batch = toOpen.filter((spec) => phase.includes(spec.layer));
      const opened = await Promise.allSettled(
        batch.map(async (spec) => {
          const forwarder = this.createForwarder(spec);
          try {
            await forwarder.listen(spec.claim.address, spec.claim.port);
          } catch (err) {
            await closeForwarder(forwarder, 0).catch(() => {});
            throw listenError(err, spec.claim);
          }
          this.listeners.set(spec.key, { spec, forwarder });
          addedListeners.push(spec.key);
          summary.opened++;
        }),
      );
      const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }

  private countListeners(): void {
    const byLayer = { node: 0, service: 0, loadbalancer: 0, health: 0 } as Record<string, number>;
    for (const l of this.listeners.values()) byLayer[l.spec.layer] = (byLayer[l.spec.layer] ?? 0) + 1;
    for (const [layer, n] of Object.entries(byLayer)) this.observers.metrics.listeners.set({ layer }, n);
    let podPorts = 0;
    for (const p of this.pods.values()) podPorts += p.pod.spec.ports.length;
    this.observers.metrics.listeners.set({ layer: 'pod' }, podPorts);
  }

  private async rollBack(listenerKeys: string[], podKeys: string[]): Promise<void> {
    for (const key of listenerKeys) {
      const open = this.listeners.get(key);
      this.listeners.delete(key);
      if (open) await closeForwarder(open.forwarder, 0);
    }
    for (const key of podKeys) {
      const running = this.pods.get(key);
      this.pods.delete(key);
      if (running) await running.pod.stop();
    }
  }

  /** retire stops a listener accepting now; its open connections drain in the background up to --drain-timeout. */
  private retire(open: OpenListener): void {
    void closeForwarder(open.forwarder, this.options.drainTimeoutMs);
  }

  /** balancerFor returns the one balancer of a Service port, made on first use; routes hold it, sync updates it. */
  private balancerFor(key: string): ServicePortBalancer {
    let b = this.balancers.get(key);
    if (!b) {
      b = new ServicePortBalancer(key, this.options.balance);
      this.balancers.set(key, b);
    }
    return b;
  }

  private updateBalancers(svc: ServiceState): void {
    for (const sp of svc.ports) {
      const b = this.balancerFor(sp.key);
      b.update(sp, svc);
      for (const e of sp.endpoints) if (e.podKey && !this.pods.get(e.podKey)?.pod.running) b.setDown(e.ip, e.port, true);
    }
  }

  private balancersOf(svc: ServiceState): ServicePortBalancer[] {
    return svc.ports.map((sp) => this.balancers.get(sp.key)!).filter(Boolean);
  }

  /** listenerSpecs lists the listeners one Service needs: service and LB ports, its nodePorts and health checks on every node. */
  private listenerSpecs(svc: ServiceState, nodes: NodeState[]): ListenerSpec[] {
    const specs: ListenerSpec[] = [];
    const add = (spec: Omit<ListenerSpec, 'key' | 'serviceKey'>) => {
      specs.push({ ...spec, key: `${spec.claim.address}:${spec.claim.port}/${spec.claim.protocol}`, serviceKey: svc.key });
    };
    for (const sp of svc.ports) {
      const portName = sp.name || String(sp.port);
      const claimFor = (address: string, port: number, owner: string, field: string): Claim => ({ address, port, protocol: sp.protocol, owner, field });
      if (svc.clusterIP) {
        const listen = `${svc.clusterIP}:${sp.port}`;
        add({ claim: claimFor(svc.clusterIP, sp.port, `Service ${svc.key}`, `spec.ports[${portName}].port`), layer: 'service', mode: sp.mode, identity: `service|${sp.key}|${sp.mode}`, routeSig: `${listen}|${svc.internalTrafficPolicy}`, makeRoute: () => this.serviceRoute(svc, sp, 'service', listen) });
      }
      if (svc.loadBalancerIP) {
        const listen = `${svc.loadBalancerIP}:${sp.port}`;
        add({ claim: claimFor(svc.loadBalancerIP, sp.port, `Service ${svc.key} (LoadBalancer)`, `spec.ports[${portName}].port`), layer: 'loadbalancer', mode: sp.mode, identity: `lb|${sp.key}|${sp.mode}`, routeSig: listen, makeRoute: () => this.serviceRoute(svc, sp, 'loadbalancer', listen) });
      }
      if (sp.nodePort !== undefined) {
        for (const node of nodes) {
          const routeSig = `${node.name}|${svc.externalTrafficPolicy}|${svc.clusterIP}:${sp.port}`;
          add({ claim: claimFor(node.address, sp.nodePort, `Service ${svc.key} on ${node.name}`, `spec.ports[${portName}].nodePort`), layer: 'node', mode: sp.mode, identity: `node|${sp.key}|${sp.mode}`, routeSig, makeRoute: () => this.nodeRoute(svc, sp, node) });
        }
      }
    }
    if (svc.healthCheckNodePort !== undefined) {
      for (const node of nodes) {
        add({ claim: { address: node.address, port: svc.healthCheckNodePort, protocol: 'TCP', owner: `Service ${svc.key} on ${node.name}`, field: 'spec.healthCheckNodePort' }, layer: 'health', mode: 'health', identity: `health|${svc.key}|${node.name}`, routeSig: '', health: { svc, node } });
      }
    }
    return specs;
  }

  private route(svc: ServiceState, sp: ServicePortState, layer: Layer, listen: string, choose: (flow: Flow) => Upstream | undefined | typeof DROP): Route {
    return {
      layer,
      listen,
      servicePort: sp.key,
      serviceName: `${svc.key}:${sp.name || sp.port}`,
      choose,
      observer: this.observers.forListener(layer, sp.key),
      idleTimeoutMs: this.options.idleTimeoutMs,
    };
  }

  /** serviceRoute picks an endpoint. A Local policy keeps the choice on the flow's node, as kube-proxy's local chains do. */
  private serviceRoute(svc: ServiceState, sp: ServicePortState, layer: Layer, listen: string): Route {
    const balancer = this.balancerFor(sp.key);
    const firstNode = this.current?.nodes[0]?.name ?? 'node-1';
    return this.route(svc, sp, layer, listen, (flow) => {
      let localNode: string | undefined;
      if (flow.localOnly) localNode = flow.entryNode;
      else if (layer === 'service' && flow.entryNode === undefined && svc.internalTrafficPolicy === 'Local') localNode = flow.clientNode ?? firstNode;
      const ep = balancer.pick(flow.clientAddress, localNode);
      // A Local policy with no endpoint on the node DROPs in kube-proxy; anything else with none is REJECTed.
      if (!ep) return localNode !== undefined && balancer.endpoints.length > 0 ? DROP : undefined;
      return toUpstream(ep);
    });
  }

  /** nodeRoute forwards a nodePort to the Service's port (via-service, the seed's picture) or straight to a pod (direct). */
  private nodeRoute(svc: ServiceState, sp: ServicePortState, node: NodeState): Route {
    const balancer = this.balancerFor(sp.key);
    const local = svc.externalTrafficPolicy === 'Local';
    const viaService = this.options.nodeportHop === 'via-service' && svc.clusterIP !== undefined;
    const serviceHop: Upstream = { host: svc.clusterIP ?? '', port: sp.port, address: `${svc.clusterIP ?? ''}:${sp.port}`, internal: true };
    return this.route(svc, sp, 'node', `${node.address}:${sp.nodePort}`, (flow) => {
      flow.entryNode = node.name;
      if (local) {
        // kube-proxy DROPs on a node without a local endpoint; the client sees a timeout, not a refusal.
        if (!balancer.hasLocal(node.name)) return DROP;
        flow.localOnly = true;
      }
      if (balancer.endpoints.length === 0) return undefined;
      if (viaService) return serviceHop;
      const ep = balancer.pick(flow.clientAddress, local ? node.name : undefined);
      return ep && toUpstream(ep);
    });
  }

  private createForwarder(spec: ListenerSpec): Forwarder {
    if (spec.mode === 'health') return new HealthCheckServer(spec.health!.svc.namespace, spec.health!.svc.name, spec.health!.node.name, this.balancersOf(spec.health!.svc));
    const route = spec.makeRoute!();
    if (spec.mode === 'udp') return new UdpForwarder(route, this.conntrack, this.options.udpTimeoutMs);
    if (spec.mode === 'http') return new HttpForwarder(route, this.conntrack, this.proxy, { headersTimeoutMs: this.options.headersTimeoutMs, maxConnections: this.options.maxConnections });
    return new TcpForwarder(route, this.conntrack, this.options.maxConnections);
  }

  /** withdrawPod takes a pod's endpoints out of every balancer at once, before its sockets go. */
  private withdrawPod(pod: StandinPod): void {
    for (const b of this.balancers.values()) {
      for (const e of b.endpoints) if (e.podKey === pod.spec.key) b.setDown(e.ip, e.port, true);
    }
  }

  /** killPod stops a stand-in pod as a crash would: its endpoints are withdrawn and its connections reset. */
  async killPod(name: string): Promise<StandinPod | undefined> {
    const running = [...this.pods.values()].find((r) => r.pod.spec.name === name || r.pod.spec.key === name);
    if (!running) return undefined;
    this.withdrawPod(running.pod);
    await running.pod.kill();
    return running.pod;
  }

  /** restartPod brings a killed pod back, as its ReplicaSet would, and restores its endpoints. */
  async restartPod(pod: StandinPod): Promise<void> {
    if (![...this.pods.values()].some((r) => r.pod === pod)) return;
    await pod.start();
    for (const svc of this.current?.services ?? []) {
      for (const sp of svc.ports) for (const e of sp.endpoints) if (e.podKey === pod.spec.key) this.balancers.get(sp.key)?.setDown(e.ip, e.port, false);
    }
  }

  listPods(): StandinPod[] {
    return [...this.pods.values()].map((r) => r.pod);
  }

  /** close stops accepting everywhere, drains up to drainMs, then closes the rest: listeners first, pods last. */
  async close(drainMs: number): Promise<void> {
    await this.syncing.catch(() => {});
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((l) => closeForwarder(l.forwarder, drainMs)));
    const pods = [...this.pods.values()];
    this.pods.clear();
    await Promise.all(pods.map((p) => p.pod.stop()));
    this.proxy.close();
  }

  get openListeners(): number {
    return this.listeners.size;
  }
}

// One Upstream per endpoint, made on first use: no object or address string is built per connection or request.
const upstreams = new WeakMap<EndpointState, Upstream>();

function toUpstream(ep: EndpointState): Upstream {
  let up = upstreams.get(ep);
  if (!up) {
    up = { host: ep.ip, port: ep.port, address: `${ep.ip}:${ep.port}`, internal: false, podName: ep.podName, node: ep.node };
    upstreams.set(ep, up);
  }
  return up;
}

/** podIdentity: a pod that keeps its address and node is the same pod; its ports are reconciled in place. */
function podIdentity(p: { ip: string; node: string }): string {
  return `${p.ip}|${p.node}`;
}

async function closeForwarder(f: Forwarder, drainMs: number): Promise<void> {
  if (f instanceof UdpForwarder) return f.close();
  return f.close(drainMs);
}

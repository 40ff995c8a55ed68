// runtime.ts — one running portlab: its inputs (manifests, run-time overrides), one queue of syncs, the admin
// listener. The CLI and the tests both start it here.
import { readFileSync } from 'node:fs';
import { PortlabError } from './errors.js';
import type { Options } from './cli/options.js';
import type { Manifests } from './manifest/objects.js';
import { blocksOverlap, parseServiceCidrs } from './model/addresses.js';
import { loadManifests, planState } from './model/plan.js';
import type { DesiredState, PodOverride } from './model/desired-state.js';
import { AdminServer } from './observe/admin.js';
import { nodeFor, servicePortRules } from './rules/ruleset.js';
import { SyncHealth } from './observe/health.js';
import { TrafficLog } from './observe/log.js';
import { Metrics } from './observe/metrics.js';
import { Observers } from './observe/observer.js';
import { Proxier, type SyncSummary } from './sync/proxier.js';
import { listenError } from './sync/listen-errors.js';
import { ConntrackWatcher } from './kernel/conntrack.js';
import { IptablesPlane } from './kernel/iptables-plane.js';
import { NftablesPlane } from './kernel/nftables-plane.js';
import { MASQUERADE_MARK, preflight, type KernelPlane } from './kernel/plane.js';
import type { ProxyNode } from './rules/view.js';

export type RuntimeOptions = Omit<Options, 'command' | 'positionals' | 'bench' | 'output' | 'hosts' | 'rules' | 'trace'>;

/** REJECTED is how every failed reload begins: the running config is untouched. */
export const REJECTED = 'reload rejected; still serving the previous config';

/** How long a killed stand-in pod stays down before its workload brings it back, unless the caller says otherwise. */
export const RESTART_DELAY_MS = 2000;

export type PodAction = 'kill' | 'start' | 'ready' | 'unready';

/** conntrackAccounting tells whether the kernel counts each connection's bytes, which conntrack then reports. */
function conntrackAccounting(): boolean {
  try {
    return readFileSync('/proc/sys/net/netfilter/nf_conntrack_acct', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Portlab is the process's one instance of everything that runs. */
export class Portlab {
  readonly metrics = new Metrics();
  readonly health = new SyncHealth();
  readonly observers: Observers;
  readonly proxier: Proxier;
  admin?: AdminServer;
  /** kernel is the kernel data plane in --proxy-mode nftables|iptables; the proxier then runs pods and health checks only. */
  kernel?: KernelPlane;
  private conntrack?: ConntrackWatcher;
  /** kernelNotes say what a kernel mode cannot show here: flows without conntrack, bytes without its accounting. */
  readonly kernelNotes: string[] = [];
  private manifests?: Manifests;
  /** overrides are what users changed at run time, by pod key: inputs of every sync, like the manifests. */
  private readonly overrides = new Map<string, PodOverride>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** restarts are the pending restarts of killed pods, by pod key. */
  private readonly restarts = new Map<string, NodeJS.Timeout>();
  /** queue serialises every change of input: reloads, pod kills and readiness, probe timers. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly options: RuntimeOptions,
    private readonly log: TrafficLog,
  ) {
    this.observers = new Observers(this.metrics, log);
    const shared = options.addresses === 'shared';
    this.proxier = new Proxier(
      {
        upstreamTimeoutMs: options.upstreamTimeoutMs,
        headersTimeoutMs: options.headersTimeoutMs,
        bodyTimeoutMs: options.bodyTimeoutMs,
        upstreamConnections: options.upstreamConnections,
        udpTimeoutMs: options.udpTimeoutMs,
        drainTimeoutMs: options.drainTimeoutMs,
        maxConnections: options.maxConnections,
        budget: options.budget,
        seed: options.seed,
        portOffset: options.portOffset,
        shared,
        checkClaimsEverySync: shared || blocksOverlap([parseServiceCidrs(options.serviceCidr).v4.text, options.podCidr, options.loadBalancerCidr, options.nodes > 1 ? options.nodeCidr : options.nodeAddress]),
      },
      this.observers,
    );
  }

  /** start plans, syncs and opens the admin listener. On any failure nothing is left listening. */
  static async start(options: RuntimeOptions, log = new TrafficLog(options.logFormat)): Promise<{ portlab: Portlab; state: DesiredState; summary: SyncSummary }> {
    const mode = options.proxyMode === 'nftables' || options.proxyMode === 'iptables' ? options.proxyMode : undefined;
    // The kernel's tools and rights are checked before anything starts.
    const tools = mode ? await preflight(mode) : undefined;
    const manifests = await loadManifests(options);
    const state = planState(manifests, options);
    const portlab = new Portlab(options, log);
    if (mode && tools) {
      portlab.kernel = mode === 'nftables' ? new NftablesPlane(tools.tool) : new IptablesPlane(tools.tool, tools.helper!);
      const kernel = portlab.kernel;
      portlab.observers.metrics.kernelCounters = () => kernel.counters();
      const accounting = conntrackAccounting();
      if (tools.conntrack) portlab.conntrack = new ConntrackWatcher(tools.conntrack, portlab.observers, mode, accounting);
      else portlab.kernelNotes.push('conntrack is not installed, so connections the kernel translates are not logged (apt-get install conntrack)');
      if (tools.conntrack && !accounting) portlab.kernelNotes.push('connections the kernel translates are logged without byte counts: net.netfilter.nf_conntrack_acct is 0 in this network namespace (sysctl -w net.netfilter.nf_conntrack_acct=1 turns them on)');
    }
    let summary: SyncSummary;
    try {
      summary = await portlab.syncAll(state);
      portlab.conntrack?.start();
      portlab.manifests = manifests;
      portlab.afterSync(summary);
      portlab.health.synced();
      if (options.admin) {
        const admin = new AdminServer(portlab.observers, portlab.health, {
          state: () => portlab.proxier.state,
          pod: (name, action, restartAfterMs) => portlab.pod(name, action, restartAfterMs),
          nodeportHop: options.nodeportHop,
          proxyMode: mode ?? 'userspace',
          stats: () => portlab.observers.dashboardStats(),
          rules: (key, mode) => {
            const state = portlab.proxier.state;
            return state && servicePortRules(state, nodeFor(state, options), key, mode);
          },
        });
        try {
          await admin.listen(options.admin.host, options.admin.port);
        } catch (err) {
          throw listenError(err, { address: options.admin.host, port: options.admin.port, protocol: 'TCP', owner: 'portlab admin listener', field: '--admin' });
        }
        portlab.admin = admin;
      }
    } catch (err) {
      await portlab.proxier.close(0);
      throw err;
    }
    return { portlab, state, summary };
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => {});
    return run;
  }

  /** reload re-reads the manifests. An invalid edit or a failed sync keeps the running config and marks /healthz. */
  reload(): Promise<{ ok: true; summary: SyncSummary; state: DesiredState } | { ok: false; error: PortlabError | Error }> {
    return this.enqueue(async () => {
      try {
        const manifests = await loadManifests(this.options);
        const state = planState(manifests, this.options, this.proxier.state, this.overrides);
        const summary = await this.syncAll(state);
        this.manifests = manifests;
        this.afterSync(summary);
        this.health.synced();
        this.observers.feed.emit('topology');
        return { ok: true as const, summary, state };
      } catch (err) {
        const error = rejected(err);
        const details = error instanceof PortlabError && error.details.length > 0 ? `\n${error.details.join('\n')}` : '';
        this.health.failed(`${error.message}${details}`);
        this.metrics.syncFailures.inc();
        this.observers.feed.emit('topology');
        return { ok: false as const, error };
      }
    });
  }

  /** replan syncs the manifests already read with the overrides as they are now: a run-time change, not an edit. */
  private async replan(): Promise<SyncSummary | undefined> {
    if (!this.manifests || this.closed) return undefined;
    const state = planState(this.manifests, this.options, this.proxier.state, this.overrides);
    const summary = await this.syncAll(state);
    this.afterSync(summary);
    this.observers.feed.emit('topology');
    return summary;
  }

  /** kernelNode is the node the kernel rules are written for, with portlab's own masquerade mark. */
  kernelNode(state: DesiredState): ProxyNode {
    return { ...nodeFor(state, this.options), masqueradeMark: MASQUERADE_MARK };
  }

  /**
   * syncAll syncs the proxier (pods, and in userspace mode the listeners), then the kernel's rules. When the kernel
   * refuses the rules, the proxier goes back to the previous state, so pods and rules never disagree.
   */
  private async syncAll(state: DesiredState): Promise<SyncSummary> {
    const previous = this.proxier.state;
    const summary = await this.proxier.sync(state);
    if (!this.kernel) return summary;
    try {
      const applied = await this.kernel.apply(state, this.kernelNode(state));
      summary.kernel = { mode: this.kernel.mode, ...applied };
    } catch (err) {
      if (previous) await this.proxier.sync(previous).catch(() => {});
      throw err;
    }
    this.conntrack?.update(state);
    return summary;
  }

  private override(key: string, change: PodOverride): void {
    this.overrides.set(key, { ...this.overrides.get(key), ...change });
  }

  /**
   * pod changes a stand-in pod at run time. `kill` stops it as a crash would (connections reset, endpoints withdrawn)
   * and its workload brings it back after restartAfterMs (never, when that is not finite); `start` brings a killed pod
   * back now; `unready` and `ready` flip its readiness, as a failing or passing readiness probe would. It resolves to
   * false when no pod has that name.
   */
  pod(name: string, action: PodAction, restartAfterMs = RESTART_DELAY_MS): Promise<boolean> {
    return this.enqueue(async () => {
      const pod = this.proxier.state?.pods.find((p) => p.name === name || p.key === name);
      if (!pod) return false;
      clearTimeout(this.restarts.get(pod.key));
      this.restarts.delete(pod.key);
      if (action === 'kill') {
        // A restarted container runs its readiness probe again.
        this.override(pod.key, { killed: true, probePassed: false });
        if (Number.isFinite(restartAfterMs)) this.restarts.set(pod.key, this.later(restartAfterMs, () => this.override(pod.key, { killed: false })));
      } else if (action === 'start') this.override(pod.key, { killed: false });
      else this.override(pod.key, { ready: action === 'ready' });
      await this.replan();
      return true;
    });
  }

  /** later changes an input after a delay, through the queue, and syncs. */
  private later(ms: number, change: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.enqueue(async () => {
        change();
        await this.replan();
      }).catch(() => {});
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  /** afterSync starts the readiness delay of each pod that just started. */
  private afterSync(summary: SyncSummary): void {
    for (const pod of summary.startedPods) {
      if (pod.readinessDelayMs > 0 && !pod.ready) this.later(pod.readinessDelayMs, () => this.override(pod.key, { probePassed: true }));
    }
  }

  async close(drainMs = this.options.drainTimeoutMs): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    await this.admin?.close();
    this.conntrack?.stop();
    // The kernel's rules go first: nothing may be translated to pods that are about to stop.
    await this.kernel?.close();
    await this.proxier.close(drainMs);
    this.log.flush(); // the last lines of the drain are not lost
  }
}

/** rejected words a failed reload's error so it says what happened: nothing changed, the previous config serves. */
function rejected(err: unknown): PortlabError | Error {
  if (err instanceof PortlabError) {
    const message = err.message.replace(/; nothing was started$/, '');
    return new PortlabError(err.code, `${REJECTED}: ${message}`, { details: err.details, fix: err.fix, cause: err.cause });
  }
  return new Error(`${REJECTED}: ${(err as Error)?.message ?? String(err)}`);
}

// runtime.ts — one running portlab: plan from files, sync, admin listener, reloads. The CLI and the tests both start it here.
import { PortlabError } from './errors.js';
import type { Options } from './cli/options.js';
import { blocksOverlap } from './model/addresses.js';
import { planFromFiles } from './model/plan.js';
import type { DesiredState } from './model/desired-state.js';
import { AdminServer } from './observe/admin.js';
import { SyncHealth } from './observe/health.js';
import { TrafficLog } from './observe/log.js';
import { Metrics } from './observe/metrics.js';
import { Observers } from './observe/observer.js';
import { Proxier, type SyncSummary } from './sync/proxier.js';
import { listenError } from './sync/listen-errors.js';

export type RuntimeOptions = Omit<Options, 'command' | 'positionals' | 'bench' | 'output' | 'hosts'>;

/** Portlab is the process's one instance of everything that runs. */
export class Portlab {
  readonly metrics = new Metrics();
  readonly health = new SyncHealth();
  readonly observers: Observers;
  readonly proxier: Proxier;
  admin?: AdminServer;
  private readonly respawn = new Set<NodeJS.Timeout>();

  private constructor(
    readonly options: RuntimeOptions,
    private readonly log: TrafficLog,
  ) {
    this.observers = new Observers(this.metrics, log);
    this.proxier = new Proxier(
      {
        balance: options.balance,
        nodeportHop: options.nodeportHop,
        upstreamTimeoutMs: options.upstreamTimeoutMs,
        headersTimeoutMs: options.headersTimeoutMs,
        udpTimeoutMs: options.udpTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        drainTimeoutMs: options.drainTimeoutMs,
        maxConnections: options.maxConnections,
        checkClaimsEverySync:
          options.addresses === 'shared' ||
          blocksOverlap([options.serviceCidr, options.podCidr, options.loadBalancerCidr, options.nodes > 1 ? options.nodeCidr : options.nodeAddress]),
      },
      this.observers,
    );
  }

  /** start plans, syncs and opens the admin listener. On any failure nothing is left listening. */
  static async start(options: RuntimeOptions, log = new TrafficLog(options.logFormat)): Promise<{ portlab: Portlab; state: DesiredState; summary: SyncSummary }> {
    const state = await planFromFiles(options);
    const portlab = new Portlab(options, log);
    let summary: SyncSummary;
    try {
      summary = await portlab.proxier.sync(state);
      portlab.health.synced();
      if (options.admin) {
        const admin = new AdminServer(portlab.observers, portlab.health, {
          state: () => portlab.proxier.state,
          killPod: async (name) => portlab.killPod(name),
          nodeportHop: options.nodeportHop,
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

  /** reload re-reads the manifests. An invalid edit or a failed sync keeps the running config and marks /healthz. */
  async reload(): Promise<{ ok: true; summary: SyncSummary; state: DesiredState } | { ok: false; error: PortlabError | Error }> {
    try {
      const state = await planFromFiles(this.options, this.proxier.state);
      const summary = await this.proxier.sync(state);
      this.health.synced();
      this.observers.feed.emit('topology');
      return { ok: true, summary, state };
    } catch (err) {
      const e = err as Error;
      const details = err instanceof PortlabError && err.details.length > 0 ? `\n${err.details.join('\n')}` : '';
      this.health.failed(`${e.message}${details}`);
      this.metrics.syncFailures.inc();
      this.observers.feed.emit('topology');
      return { ok: false, error: e };
    }
  }

  /** killPod crashes a stand-in pod; its owner brings a replacement after a short delay, as a ReplicaSet does. */
  async killPod(name: string, restartAfterMs = 2000): Promise<boolean> {
    const pod = await this.proxier.killPod(name);
    if (!pod) return false;
    this.observers.feed.emit('topology');
    const timer = setTimeout(() => {
      this.respawn.delete(timer);
      this.proxier
        .restartPod(pod)
        .then(() => this.observers.feed.emit('topology'))
        .catch(() => {});
    }, restartAfterMs);
    this.respawn.add(timer);
    return true;
  }

  async close(drainMs = this.options.drainTimeoutMs): Promise<void> {
    for (const t of this.respawn) clearTimeout(t);
    await this.admin?.close();
    await this.proxier.close(drainMs);
    this.log.flush(); // the last lines of the drain are not lost
  }
}

// observer.ts — turns forwarder events into metrics, log lines and dashboard events, with per-listener work done once.
import { EventEmitter } from 'node:events';
import type { Flow, HopTiming, Layer } from '../forward/flow.js';
import type { ListenerObserver } from '../forward/route.js';
import { isoNow, toRecord, type FlowRecord, type TrafficLog } from './log.js';
import type { Metrics } from './metrics.js';

/** PortTally is what the dashboard shows for one Service port: the process's own counts since it started. */
class PortTally {
  count = 0;
  errors = 0;
  /** pods counts flows per pod (or endpoint address), so shares are per Service port. */
  readonly pods = new Map<string, number>();
  /** recent holds the last RECENT durations in ms, for p50 and p99. */
  readonly recent = new Float64Array(RECENT);
  filled = 0;
}
const RECENT = 256;

export interface DashboardStats {
  ports: Record<string, { count: number; errors: number; p50Ms: number | null; p99Ms: number | null; pods: Record<string, number> }>;
}

/** Observers fans each finished flow out to the log, the metrics and the dashboard's live feed. */
export class Observers {
  /** feed emits 'flow' with a FlowRecord for each finished connection or request, and 'topology' after each sync. */
  readonly feed = new EventEmitter();
  private readonly tallies = new Map<string, PortTally>();

  constructor(
    readonly metrics: Metrics,
    private readonly log: TrafficLog,
  ) {
    this.feed.setMaxListeners(1000);
  }

  private emit(flow: Flow): void {
    this.tally(flow);
    // The record is built only when someone reads it: with --quiet and no dashboard open, a flow costs nothing more.
    const hasFeed = this.feed.listenerCount('flow') > 0;
    if (!hasFeed && !this.log.enabled) return;
    if (!hasFeed && this.log.json) {
      // The hot case under load: the flow waits, and its JSON line is made with the rest of the batch.
      this.log.writeFlow(flow);
      return;
    }
    const record: FlowRecord = toRecord(flow, isoNow());
    this.log.write(record);
    if (hasFeed) this.feed.emit('flow', record);
  }

  /** tally counts a finished flow for the dashboard: a few additions, whether or not a page is open. */
  private tally(flow: Flow): void {
    let t = this.tallies.get(flow.servicePort);
    if (!t) this.tallies.set(flow.servicePort, (t = new PortTally()));
    t.count++;
    if (flow.error !== undefined || (flow.status !== undefined && flow.status >= 500)) t.errors++;
    const pod = flow.podName ?? flow.pod;
    if (pod !== undefined) t.pods.set(pod, (t.pods.get(pod) ?? 0) + 1);
    const duration = flow.hops[0]?.durationMs;
    if (duration !== undefined) t.recent[t.filled++ % RECENT] = duration;
  }

  /** dashboardStats are the tallies as the page reads them, with p50 and p99 of the recent durations. */
  dashboardStats(): DashboardStats {
    const ports: DashboardStats['ports'] = {};
    for (const [key, t] of this.tallies) {
      const recent = t.recent.slice(0, Math.min(t.filled, RECENT)).sort();
      const at = (q: number) => (recent.length === 0 ? null : recent[Math.min(recent.length - 1, Math.floor(q * recent.length))]!);
      ports[key] = { count: t.count, errors: t.errors, p50Ms: at(0.5), p99Ms: at(0.99), pods: Object.fromEntries(t.pods) };
    }
    return { ports };
  }

  /** forListener resolves the listener's counters up front; the hot path only adds to numbers. */
  forListener(layer: Layer, servicePort: string): ListenerObserver {
    const s = this.metrics.statsFor(servicePort, layer);
    return {
      opened: () => {
        s.connections++;
        s.active++;
      },
      closed: (flow: Flow, hop: HopTiming, outer: boolean) => {
        s.active--;
        s.rxBytes += hop.rxBytes ?? 0;
        s.txBytes += hop.txBytes ?? 0;
        if (flow.mode !== 'http') {
          if (hop.durationMs !== undefined) s.observeDuration(hop.durationMs / 1000);
          if (outer) this.emit(flow);
        }
      },
      dropped: () => {
        s.overLimit++;
      },
      overBudget: () => {
        s.overBudget++;
      },
      droppedLocal: () => {
        s.droppedLocal++;
      },
      connectFailed: (code: string) => {
        s.connectFailures.set(code, (s.connectFailures.get(code) ?? 0) + 1);
      },
      rejected: (flow: Flow, outer: boolean) => {
        s.noEndpoints++;
        if (outer) this.emit(flow);
      },
      request: (flow: Flow, hop: HopTiming, outer: boolean) => {
        if (hop.durationMs !== undefined) s.observeDuration(hop.durationMs / 1000);
        if (!outer) return;
        const status = flow.status ?? 0;
        if (status >= 100 && status < 600) s.byClass[Math.floor(status / 100) - 1]!++;
        this.emit(flow);
      },
    };
  }
}

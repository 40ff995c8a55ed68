// observer.ts — turns forwarder events into metrics, log lines and dashboard events, with per-listener work done once.
import { EventEmitter } from 'node:events';
import type { Flow, HopTiming, Layer } from '../forward/flow.js';
import type { ListenerObserver } from '../forward/route.js';
import { isoNow, toRecord, type FlowRecord, type TrafficLog } from './log.js';
import type { Metrics } from './metrics.js';

/** Observers fans each finished flow out to the log, the metrics and the dashboard's live feed. */
export class Observers {
  /** feed emits 'flow' with a FlowRecord for each finished connection or request, and 'topology' after each sync. */
  readonly feed = new EventEmitter();

  constructor(
    readonly metrics: Metrics,
    private readonly log: TrafficLog,
  ) {
    this.feed.setMaxListeners(1000);
  }

  private emit(flow: Flow): void {
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

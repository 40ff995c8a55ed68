// observer.ts — turns forwarder events into metrics, log lines and dashboard events, with per-listener work done once.
import { EventEmitter } from 'node:events';
import type { Flow, HopTiming, Layer } from '../forward/flow.js';
import type { ListenerObserver } from '../forward/route.js';
import { toRecord, type FlowRecord, type TrafficLog } from './log.js';
import type { Metrics } from './metrics.js';

/** Observers fans each finished flow out to the log, the metrics and the dashboard's live feed. */
export class Observers {
  /** feed emits 'flow' with a FlowRecord for each finished connection or request. */
  readonly feed = new EventEmitter();

  constructor(
    readonly metrics: Metrics,
    private readonly log: TrafficLog,
  ) {
    this.feed.setMaxListeners(1000);
  }

  private emit(flow: Flow): void {
    const hasFeed = this.feed.listenerCount('flow') > 0;
    const record: FlowRecord = toRecord(flow);
    this.log.write(record);
    if (hasFeed) this.feed.emit('flow', record);
  }

  /** forListener resolves the metric children for one listener up front, so the hot path only increments. */
  forListener(layer: Layer, servicePort: string): ListenerObserver {
    const m = this.metrics;
    const labels = { service_port: servicePort, layer };
    const total = m.downstreamConnections.labels(labels);
    const active = m.downstreamActive.labels(labels);
    const rx = m.downstreamRxBytes.labels(labels);
    const tx = m.downstreamTxBytes.labels(labels);
    const duration = m.hopDuration.labels(labels);
    const noEndpoints = m.rejected.labels({ ...labels, reason: 'no_endpoints' });
    const overLimit = m.rejected.labels({ ...labels, reason: 'max_connections' });
    const byClass = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((code_class) => m.httpRequests.labels({ ...labels, code_class }));
    return {
      opened: () => {
        total.inc();
        active.inc();
      },
      closed: (flow: Flow, hop: HopTiming, outer: boolean) => {
        active.dec();
        if (flow.mode !== 'http') {
          if (hop.durationMs !== undefined) duration.observe(hop.durationMs / 1000);
          if (outer) this.emit(flow);
        }
        rx.inc(hop.rxBytes ?? 0);
        tx.inc(hop.txBytes ?? 0);
      },
      dropped: () => overLimit.inc(),
      connectFailed: (code: string) => m.upstreamConnectFail.labels({ ...labels, code }).inc(),
      rejected: (flow: Flow, outer: boolean) => {
        noEndpoints.inc();
        if (outer) this.emit(flow);
      },
      request: (flow: Flow, hop: HopTiming, outer: boolean) => {
        if (hop.durationMs !== undefined) duration.observe(hop.durationMs / 1000);
        if (!outer) return;
        const status = flow.status ?? 0;
        if (status >= 100 && status < 600) byClass[Math.floor(status / 100) - 1]!.inc();
        this.emit(flow);
      },
    };
  }
}

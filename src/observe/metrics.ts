// metrics.ts — every metric portlab exports, declared in one place (kube-proxy's habit), with Envoy's traffic names.
// The hot path only adds to plain numbers in ListenerStats; prom-client reads them at scrape time (collect), so a
// request never pays for label hashing or allocation.
import client from 'prom-client';
import type { RuleCounter } from '../kernel/plane.js';

/** HOP_BUCKETS are the hop-duration histogram's upper bounds, in seconds. */
export const HOP_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** ListenerStats are one Service port's counters at one layer. They live across reloads, so counters never go back. */
export class ListenerStats {
  connections = 0;
  active = 0;
  rxBytes = 0;
  txBytes = 0;
  noEndpoints = 0;
  overLimit = 0;
  overBudget = 0;
  droppedLocal = 0;
  readonly connectFailures = new Map<string, number>();
  readonly byClass = [0, 0, 0, 0, 0];
  readonly buckets = new Float64Array(HOP_BUCKETS.length);
  durationSum = 0;
  durationCount = 0;

  constructor(
    readonly servicePort: string,
    readonly layer: string,
  ) {}

  observeDuration(seconds: number): void {
    this.durationSum += seconds;
    this.durationCount++;
    for (let i = 0; i < HOP_BUCKETS.length; i++) {
      if (seconds <= HOP_BUCKETS[i]!) {
        this.buckets[i]!++;
        return;
      }
    }
  }
}

/** Metrics owns its own registry, so two portlab instances in one test process never share counters. */
export class Metrics {
  readonly registry = new client.Registry();
  private readonly stats = new Map<string, ListenerStats>();

  /** statsFor returns the one ListenerStats of a Service port at a layer, made on first use. */
  statsFor(servicePort: string, layer: string): ListenerStats {
    const key = `${servicePort}|${layer}`;
    let s = this.stats.get(key);
    if (!s) {
      s = new ListenerStats(servicePort, layer);
      this.stats.set(key, s);
    }
    return s;
  }

  private counterFrom(name: string, help: string, read: (s: ListenerStats) => number): client.Counter<'service_port' | 'layer'> {
    const stats = this.stats;
    return new client.Counter({
      name,
      help,
      labelNames: ['service_port', 'layer'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of stats.values()) this.inc({ service_port: s.servicePort, layer: s.layer }, read(s));
      },
    });
  }

  /** downstreamConnections counts accepted client connections per Service port and layer. */
  readonly downstreamConnections = this.counterFrom('portlab_downstream_cx_total', 'Connections accepted, per Service port and layer (node, service, loadbalancer).', (s) => s.connections);
  readonly downstreamRxBytes = this.counterFrom('portlab_downstream_cx_rx_bytes_total', 'Bytes received from clients, counted once when a connection closes.', (s) => s.rxBytes);
  readonly downstreamTxBytes = this.counterFrom('portlab_downstream_cx_tx_bytes_total', 'Bytes sent to clients, counted once when a connection closes.', (s) => s.txBytes);

  readonly downstreamActive = new client.Gauge({
    name: 'portlab_downstream_cx_active',
    help: 'Connections open now, per Service port and layer.',
    labelNames: ['service_port', 'layer'] as const,
    registers: [this.registry],
    collect: () => {
      this.downstreamActive.reset();
      for (const s of this.stats.values()) this.downstreamActive.set({ service_port: s.servicePort, layer: s.layer }, s.active);
    },
  });

  readonly rejected = new client.Counter({
    name: 'portlab_downstream_cx_rejected_total',
    help: 'Connections or requests refused or dropped, by reason (no_endpoints, max_connections, fd_limit: the process is at its descriptor budget, no_local_endpoint: a Local traffic policy on a node without a local endpoint).',
    labelNames: ['service_port', 'layer', 'reason'] as const,
    registers: [this.registry],
    collect: () => {
      this.rejected.reset();
      for (const s of this.stats.values()) {
        this.rejected.inc({ service_port: s.servicePort, layer: s.layer, reason: 'no_endpoints' }, s.noEndpoints);
        this.rejected.inc({ service_port: s.servicePort, layer: s.layer, reason: 'max_connections' }, s.overLimit);
        if (s.overBudget > 0) this.rejected.inc({ service_port: s.servicePort, layer: s.layer, reason: 'fd_limit' }, s.overBudget);
        if (s.droppedLocal > 0) this.rejected.inc({ service_port: s.servicePort, layer: s.layer, reason: 'no_local_endpoint' }, s.droppedLocal);
      }
    },
  });

  readonly upstreamConnectFail = new client.Counter({
    name: 'portlab_upstream_cx_connect_fail_total',
    help: 'Upstream connections that failed, by error code (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...).',
    labelNames: ['service_port', 'layer', 'code'] as const,
    registers: [this.registry],
    collect: () => {
      this.upstreamConnectFail.reset();
      for (const s of this.stats.values()) for (const [code, n] of s.connectFailures) this.upstreamConnectFail.inc({ service_port: s.servicePort, layer: s.layer, code }, n);
    },
  });

  readonly httpRequests = new client.Counter({
    name: 'portlab_http_requests_total',
    help: 'HTTP requests answered in L7 mode, by status class (2xx, 3xx, 4xx, 5xx), counted at the first hop.',
    labelNames: ['service_port', 'layer', 'code_class'] as const,
    registers: [this.registry],
    collect: () => {
      this.httpRequests.reset();
      for (const s of this.stats.values()) {
        s.byClass.forEach((n, i) => {
          if (n > 0) this.httpRequests.inc({ service_port: s.servicePort, layer: s.layer, code_class: CLASSES[i]! }, n);
        });
      }
    },
  });

  /** syncDuration is kube-proxy's sync_proxy_rules_duration_seconds. */
  readonly syncDuration = new client.Histogram({
    name: 'portlab_sync_proxy_rules_duration_seconds',
    help: 'How long one sync of listeners and stand-in pods took.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** syncLastTimestamp is kube-proxy's sync_proxy_rules_last_timestamp_seconds. */
  readonly syncLastTimestamp = new client.Gauge({
    name: 'portlab_sync_proxy_rules_last_timestamp_seconds',
    help: 'When the last successful sync finished (Unix seconds).',
    registers: [this.registry],
  });

  readonly syncFailures = new client.Counter({
    name: 'portlab_sync_proxy_rules_failures_total',
    help: 'Syncs or reloads that failed and kept the running config.',
    registers: [this.registry],
  });

  /** feedDropped counts dashboard feed events dropped for clients that did not read them. */
  feedDropped = 0;
  readonly feedDroppedTotal = (() => {
    const self = this;
    return new client.Counter({
      name: 'portlab_feed_dropped_events_total',
      help: 'Dashboard feed events dropped because that client had not read the earlier ones.',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(self.feedDropped);
      },
    });
  })();

  /** kernelCounters reads the kernel rules' counters, in --proxy-mode nftables or iptables. */
  kernelCounters?: () => Promise<RuleCounter[]>;
  private kernelRead?: { atMs: number; counters: Promise<RuleCounter[]> };

  /** readKernel reads the counters once per scrape: both kernel metrics come from one read. */
  private readKernel(): Promise<RuleCounter[]> {
    const now = performance.now();
    if (!this.kernelCounters) return Promise.resolve([]);
    if (!this.kernelRead || now - this.kernelRead.atMs > 1000) this.kernelRead = { atMs: now, counters: this.kernelCounters().catch(() => []) };
    return this.kernelRead.counters;
  }

  private kernelCounter(name: string, help: string, read: (c: RuleCounter) => number): client.Counter<'service_port' | 'layer' | 'verdict'> {
    const self = this;
    return new client.Counter({
      name,
      help,
      labelNames: ['service_port', 'layer', 'verdict'] as const,
      registers: [this.registry],
      async collect() {
        const counters = await self.readKernel();
        this.reset();
        for (const c of counters) this.inc({ service_port: c.servicePort, layer: c.layer, verdict: c.verdict }, read(c));
      },
    });
  }

  readonly kernelPackets = this.kernelCounter(
    'portlab_kernel_rule_packets_total',
    "Packets the kernel's dispatch rules matched, per Service port, layer and verdict (dnat, reject, drop), from the rules' own counters. These rules see the first packet of each connection or UDP flow.",
    (c) => c.packets,
  );
  readonly kernelBytes = this.kernelCounter('portlab_kernel_rule_bytes_total', "Bytes of the packets counted in portlab_kernel_rule_packets_total.", (c) => c.bytes);

  readonly listeners = new client.Gauge({
    name: 'portlab_listeners',
    help: 'Listeners open now, by layer (node, service, loadbalancer, health, pod).',
    labelNames: ['layer'] as const,
    registers: [this.registry],
  });

  constructor() {
    // hop_duration_seconds is a histogram filled from ListenerStats; registered as a plain metric object.
    const stats = this.stats;
    this.registry.registerMetric({
      name: 'portlab_hop_duration_seconds',
      help: 'How long one hop carried a connection (L4) or a request (L7).',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
        for (const s of stats.values()) {
          const labels = { service_port: s.servicePort, layer: s.layer };
          let cumulative = 0;
          HOP_BUCKETS.forEach((le, i) => {
            cumulative += s.buckets[i]!;
            values.push({ labels: { ...labels, le }, value: cumulative, metricName: 'portlab_hop_duration_seconds_bucket' });
          });
          values.push({ labels: { ...labels, le: '+Inf' }, value: s.durationCount, metricName: 'portlab_hop_duration_seconds_bucket' });
          values.push({ labels, value: s.durationSum, metricName: 'portlab_hop_duration_seconds_sum' });
          values.push({ labels, value: s.durationCount, metricName: 'portlab_hop_duration_seconds_count' });
        }
        return { name: 'portlab_hop_duration_seconds', help: 'How long one hop carried a connection (L4) or a request (L7).', type: 'histogram', aggregator: 'sum', values };
      },
    } as unknown as client.Metric);
    // process_open_fds, process_max_fds, process_resident_memory_bytes and friends.
    client.collectDefaultMetrics({ register: this.registry, prefix: 'portlab_' });
  }
}

// metrics.ts — every metric portlab exports, declared in one place (kube-proxy's habit), with Envoy's traffic names.
import client from 'prom-client';

/** Metrics owns its own registry, so two portlab instances in one test process never share counters. */
export class Metrics {
  readonly registry = new client.Registry();

  /** downstreamConnections counts accepted client connections per Service port and layer. */
  readonly downstreamConnections = new client.Counter({
    name: 'portlab_downstream_cx_total',
    help: 'Connections accepted, per Service port and layer (node, service, loadbalancer).',
    labelNames: ['service_port', 'layer'] as const,
    registers: [this.registry],
  });

  readonly downstreamActive = new client.Gauge({
    name: 'portlab_downstream_cx_active',
    help: 'Connections open now, per Service port and layer.',
    labelNames: ['service_port', 'layer'] as const,
    registers: [this.registry],
  });

  readonly downstreamRxBytes = new client.Counter({
    name: 'portlab_downstream_cx_rx_bytes_total',
    help: 'Bytes received from clients, counted once when a connection closes.',
    labelNames: ['service_port', 'layer'] as const,
    registers: [this.registry],
  });

  readonly downstreamTxBytes = new client.Counter({
    name: 'portlab_downstream_cx_tx_bytes_total',
    help: 'Bytes sent to clients, counted once when a connection closes.',
    labelNames: ['service_port', 'layer'] as const,
    registers: [this.registry],
  });

  readonly rejected = new client.Counter({
    name: 'portlab_downstream_cx_rejected_total',
    help: 'Connections or requests refused at once, by reason (no_endpoints, max_connections).',
    labelNames: ['service_port', 'layer', 'reason'] as const,
    registers: [this.registry],
  });

  readonly upstreamConnectFail = new client.Counter({
    name: 'portlab_upstream_cx_connect_fail_total',
    help: 'Upstream connections that failed, by error code (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...).',
    labelNames: ['service_port', 'layer', 'code'] as const,
    registers: [this.registry],
  });

  readonly httpRequests = new client.Counter({
    name: 'portlab_http_requests_total',
    help: 'HTTP requests answered in L7 mode, by status class (2xx, 3xx, 4xx, 5xx).',
    labelNames: ['service_port', 'layer', 'code_class'] as const,
    registers: [this.registry],
  });

  readonly hopDuration = new client.Histogram({
    name: 'portlab_hop_duration_seconds',
    help: 'How long one hop carried a connection (L4) or a request (L7).',
    labelNames: ['service_port', 'layer'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
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

  readonly listeners = new client.Gauge({
    name: 'portlab_listeners',
    help: 'Listeners open now, by layer (node, service, loadbalancer, pod).',
    labelNames: ['layer'] as const,
    registers: [this.registry],
  });

  constructor() {
    // process_open_fds, process_max_fds, process_resident_memory_bytes and friends.
    client.collectDefaultMetrics({ register: this.registry, prefix: 'portlab_' });
  }
}

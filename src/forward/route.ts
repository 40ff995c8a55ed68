// route.ts — what a listener forwards to. sync() swaps a listener's route in place; the listener reads it per connection.
import type { Flow, HopTiming, Layer } from './flow.js';

/** Upstream is where one connection or request goes next: portlab's own inner hop, a stand-in pod, or your process. */
export interface Upstream {
  host: string;
  port: number;
  /** address is host:port, made once per endpoint: the log and error messages print it for every request. */
  address: string;
  /** internal marks portlab's own next hop (node → service), which tracks the flow through Conntrack. */
  internal: boolean;
  podName?: string;
  node?: string;
}

/** DROP means "say nothing", as kube-proxy's DROP rule for a Local policy without local endpoints. */
export const DROP = 'drop' as const;

/** ListenerObserver receives a listener's events. Metric children are resolved when it is made, not per connection. */
export interface ListenerObserver {
  opened(): void;
  /** closed runs once per hop; `outer` is true for the first hop, which owns the flow and its one log line. */
  closed(flow: Flow, hop: HopTiming, outer: boolean): void;
  connectFailed(code: string): void;
  rejected(flow: Flow, outer: boolean): void;
  /** dropped counts a connection refused at once because the listener is at --max-connections. */
  dropped(): void;
  request?(flow: Flow, hop: HopTiming, outer: boolean): void;
}

/** Route is a listener's live configuration. */
export interface Route {
  layer: Layer;
  /** listen is address:port as users type it. */
  listen: string;
  servicePort: string;
  serviceName: string;
  /** choose returns the upstream, undefined when no endpoint is ready (reject fast), or DROP. */
  choose(flow: Flow): Upstream | undefined | typeof DROP;
  observer: ListenerObserver;
  idleTimeoutMs: number;
}

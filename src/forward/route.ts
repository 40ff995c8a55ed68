// route.ts — the forwarding layer's view of a listener: its route (data, from the model), the forwarder interface,
// and the observer a forwarder reports to.
import type { Flow, HopTiming } from './flow.js';
import type { HealthRoute, Route, Upstream } from '../model/state.js';

export type { HealthRoute, Route, Upstream };

/** DROP means "say nothing", as kube-proxy's DROP rule for a Local policy without local endpoints. */
export const DROP = 'drop' as const;

/** ListenerObserver receives a listener's events. Metric children are resolved when it is made, not per connection. */
export interface ListenerObserver {
  opened(): void;
  /** closed runs once per hop; `outer` is true for the first hop, which owns the flow and its one log line. */
  closed(flow: Flow, hop: HopTiming, outer: boolean): void;
  connectFailed(code: string): void;
  /** rejected counts a connection or request refused because the Service port has no ready endpoint. */
  rejected(flow: Flow, outer: boolean): void;
  /** droppedLocal counts a connection a Local traffic policy DROPs: the node has no local endpoint. */
  droppedLocal(): void;
  /** dropped counts a connection refused at once because the listener is at its connection limit (--max-connections). */
  dropped(): void;
  /** overBudget counts a connection refused because the process is at its descriptor budget. */
  overBudget(): void;
  request?(flow: Flow, hop: HopTiming, outer: boolean): void;
}

/**
 * Forwarder is what every listener is, whatever it speaks (TCP, HTTP, UDP, health checks): it listens, takes a new
 * route without dropping its connections, and closes with a drain. It owns both sides of its connections: closing a
 * client connection closes its pod-side connection too, and logs and counts it.
 */
export interface Forwarder<R = Route> {
  listen(host: string, port: number): Promise<void>;
  setRoute(route: R): void;
  /** close stops accepting now; open connections drain for up to drainMs, then both of their sides are closed. */
  close(drainMs: number): Promise<void>;
  /** destroyAll closes every open connection at once, both sides. */
  destroyAll(): void;
}

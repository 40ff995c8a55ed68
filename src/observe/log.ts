// log.ts — the traffic log: one line per connection (L4) or request (L7), readable on a TTY or as JSON lines.
import type { Flow } from '../forward/flow.js';

export type LogFormat = 'text' | 'json' | 'none';

/** FlowRecord is the public shape of one finished flow: the log's JSON line, the dashboard's event. */
export interface FlowRecord {
  time: string;
  kind: 'connection' | 'request' | 'session';
  servicePort: string;
  protocol: string;
  mode: string;
  client: string;
  route: { node?: string; service?: string; loadbalancer?: string; pod?: string };
  pod?: string;
  node?: string;
  status?: number;
  method?: string;
  path?: string;
  bytesIn: number;
  bytesOut: number;
  durationMs?: number;
  hops: { layer: string; listen: string; upstream?: string; connectMs?: number; durationMs?: number }[];
  error?: string;
}

const round = (n: number | undefined) => (n === undefined ? undefined : Math.round(n * 1000) / 1000);

export function toRecord(flow: Flow): FlowRecord {
  const route: FlowRecord['route'] = {};
  for (const h of flow.hops) route[h.layer as 'node'] = h.listen;
  if (flow.pod) route.pod = flow.pod;
  return {
    time: new Date().toISOString(),
    kind: flow.mode === 'http' ? 'request' : flow.mode === 'udp' ? 'session' : 'connection',
    servicePort: flow.servicePort,
    protocol: flow.protocol,
    mode: flow.mode,
    client: `${flow.clientAddress}:${flow.clientPort}`,
    route,
    pod: flow.podName,
    node: flow.node,
    status: flow.status,
    method: flow.method,
    path: flow.path,
    bytesIn: flow.bytesIn,
    bytesOut: flow.bytesOut,
    durationMs: round(flow.hops[0]?.durationMs),
    hops: flow.hops.map((h) => ({ layer: h.layer, listen: h.listen, upstream: h.upstream, connectMs: round(h.connectMs), durationMs: round(h.durationMs) })),
    error: flow.error,
  };
}

const color = (on: boolean) => (code: number, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

/** formatText prints a record as one readable line: route, pod, status, bytes and each hop's connect/total time. */
export function formatText(r: FlowRecord, useColor: boolean): string {
  const c = color(useColor);
  const ms = (n: number | undefined) => (n === undefined ? '-' : n < 1 ? `${(n * 1000).toFixed(0)}µs` : `${n.toFixed(1)}ms`);
  const path = r.hops.map((h) => `${h.layer} ${h.listen}`).join(' → ');
  const pod = r.pod ? `pod ${r.pod} ${r.route.pod}` : r.route.pod ? `endpoint ${r.route.pod}` : c(31, 'no endpoint');
  const what = r.kind === 'request' ? `${r.method ?? ''} ${r.path ?? ''} ${statusColor(c, r.status)}` : `${r.protocol}`;
  const hops = r.hops.map((h) => `${h.layer} ${ms(h.connectMs)}/${ms(h.durationMs)}`).join(' ');
  const err = r.error ? ` ${c(31, r.error)}` : '';
  return `${c(2, r.time.slice(11, 23))} ${c(1, r.servicePort)} ${what} ${r.client} → ${path} → ${pod}  ↑${r.bytesIn}B ↓${r.bytesOut}B  ${c(2, hops)}${err}`;
}

function statusColor(c: (code: number, s: string) => string, status: number | undefined): string {
  if (status === undefined) return '-';
  return c(status >= 500 ? 31 : status >= 400 ? 33 : 32, String(status));
}

/**
 * TrafficLog writes records to a stream in the chosen format. Lines written in one turn of the event loop go out in
 * one write: under load that is one syscall for many requests instead of one each.
 */
export class TrafficLog {
  private pending: string[] = [];
  private scheduled = false;

  constructor(
    private readonly format: LogFormat,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly useColor = Boolean((process.stdout as { isTTY?: boolean }).isTTY) && !process.env.NO_COLOR,
  ) {}

  get enabled(): boolean {
    return this.format !== 'none';
  }

  write(record: FlowRecord): void {
    if (this.format === 'none') return;
    this.pending.push(this.format === 'json' ? JSON.stringify(record) : formatText(record, this.useColor));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** flush writes what is pending; shutdown calls it so no line is lost. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.out.write(`${lines.join('\n')}\n`);
  }
}

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

// isoNow is new Date().toISOString() with the date and second part kept until the second changes: one Date per second
// instead of one per line, which cost more than the rest of a JSON line.
let secondStart = -1;
let secondPrefix = '';
export function isoNow(now = Date.now()): string {
  const second = now - (now % 1000);
  if (second !== secondStart) {
    secondStart = second;
    secondPrefix = new Date(second).toISOString().slice(0, 20);
  }
  return `${secondPrefix}${String(now - second).padStart(3, '0')}Z`;
}

export function toRecord(flow: Flow, time = isoNow()): FlowRecord {
  const route: FlowRecord['route'] = {};
  for (const h of flow.hops) route[h.layer as 'node'] = h.listen;
  if (flow.pod) route.pod = flow.pod;
  return {
    time,
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

// JSON fragments for jsonLine: a field is left out when undefined, as JSON.stringify does. Most strings here are
// addresses and names with nothing to escape; only those that need it go through JSON.stringify.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const str = (v: string) => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);
const optStr = (key: string, v: string | undefined) => (v === undefined ? '' : `,"${key}":${str(v)}`);
const optNum = (key: string, v: number | undefined) => (v === undefined ? '' : `,"${key}":${v}`);

/**
 * jsonLine is JSON.stringify(toRecord(flow)), character for character, written straight from the flow: no record
 * object and no generic serializer walk per request. test/observe.test.ts checks the two stay identical.
 */
export function jsonLine(flow: Flow, time = isoNow()): string {
  let route = '';
  for (const h of flow.hops) route += `${route ? ',' : ''}${str(h.layer)}:${str(h.listen)}`;
  if (flow.pod !== undefined) route += `${route ? ',' : ''}"pod":${str(flow.pod)}`;
  let hops = '';
  for (const h of flow.hops) {
    hops += `${hops ? ',' : ''}{"layer":${str(h.layer)},"listen":${str(h.listen)}${optStr('upstream', h.upstream)}${optNum('connectMs', round(h.connectMs))}${optNum('durationMs', round(h.durationMs))}}`;
  }
  const kind = flow.mode === 'http' ? 'request' : flow.mode === 'udp' ? 'session' : 'connection';
  return (
    `{"time":"${time}","kind":"${kind}","servicePort":${str(flow.servicePort)},"protocol":${str(flow.protocol)},"mode":${str(flow.mode)},` +
    `"client":${str(`${flow.clientAddress}:${flow.clientPort}`)},"route":{${route}}${optStr('pod', flow.podName)}${optStr('node', flow.node)}` +
    `${optNum('status', flow.status)}${optStr('method', flow.method)}${optStr('path', flow.path)},"bytesIn":${flow.bytesIn},"bytesOut":${flow.bytesOut}` +
    `${optNum('durationMs', round(flow.hops[0]?.durationMs))},"hops":[${hops}]${optStr('error', flow.error)}}`
  );
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

  get json(): boolean {
    return this.format === 'json';
  }

  /** write takes a finished line (jsonLine) or a record to format as text. */
  write(entry: FlowRecord | string): void {
    if (this.format === 'none') return;
    this.pending.push(typeof entry === 'string' ? entry : this.format === 'json' ? JSON.stringify(entry) : formatText(entry, this.useColor));
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

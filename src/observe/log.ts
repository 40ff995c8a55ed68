// log.ts — the traffic log: one line per connection (L4) or request (L7), readable on a TTY or as JSON lines.
import type { Flow } from '../forward/flow.js';
import { hostPort } from '../model/state.js';

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
  /** kernel names the kernel mode that translated the flow; bytes are null when it kept no counts. */
  kernel?: string;
  bytesIn: number | null;
  bytesOut: number | null;
  durationMs?: number;
  hops: { layer: string; listen: string; upstream?: string; connectMs?: number; durationMs?: number }[];
  note?: string;
  error?: string;
}

const round = (n: number | undefined) => (n === undefined ? undefined : Math.round(n * 1000) / 1000);

// isoNow is new Date().toISOString() with the date and second part kept until the second changes: one Date per second
// instead of one per line, which cost more than the rest of a JSON line. The milliseconds come from a table.
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);
let secondStart = -1;
let secondPrefix = '';
export function isoNow(now = Date.now()): string {
  const second = now - (now % 1000);
  if (second !== secondStart) {
    secondStart = second;
    secondPrefix = new Date(second).toISOString().slice(0, 20);
  }
  return secondPrefix + MILLIS[now - second]!;
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
    client: hostPort(flow.clientAddress, flow.clientPort),
    route,
    pod: flow.podName,
    node: flow.node,
    status: flow.status,
    method: flow.method,
    path: flow.path,
    kernel: flow.kernel,
    bytesIn: flow.bytesUnknown ? null : flow.bytesIn,
    bytesOut: flow.bytesUnknown ? null : flow.bytesOut,
    durationMs: round(flow.hops[0]?.durationMs),
    hops: flow.hops.map((h) => ({ layer: h.layer, listen: h.listen, upstream: h.upstream, connectMs: round(h.connectMs), durationMs: round(h.durationMs) })),
    note: flow.note,
    error: flow.error,
  };
}

// JSON fragments for jsonLine: a field is left out when undefined, as JSON.stringify does.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** str quotes a string from an open-ended set (client, path, error); only one that needs escapes goes through JSON. */
const str = (v: string) => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

// Layers, listen addresses, endpoints, Service ports, pod and node names and methods come from a small set, and mostly
// as the very same string objects each time: each is quoted once and then found by identity-cached hash.
const QUOTED = new Map<string, string>();
function quoted(v: string): string {
  let q = QUOTED.get(v);
  if (q === undefined) {
    if (QUOTED.size >= 4096) QUOTED.clear(); // bounded: methods and names are chosen by clients and manifests
    q = JSON.stringify(v);
    QUOTED.set(v, q);
  }
  return q;
}

/**
 * millis prints round(ms) as JSON.stringify prints it, from integer microseconds: 1.2, 0.034, 5. A double's shortest
 * form for k/1000 is exactly those digits while k < 10^15; anything else goes the generic way.
 */
function millis(ms: number): string {
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us < 1e15)) return JSON.stringify(round(ms));
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  if (frac === 0) return `${whole}`;
  if (frac % 100 === 0) return `${whole}.${frac / 100}`;
  if (frac % 10 === 0) return `${whole}.${frac < 100 ? '0' : ''}${frac / 10}`;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

const KIND_JSON = { http: '"request"', udp: '"session"', tcp: '"connection"' } as const;

/**
 * jsonLine is JSON.stringify(toRecord(flow)), character for character, written straight from the flow: no record
 * object and no generic serializer walk per request. test/observe.test.ts checks the two stay identical.
 */
export function jsonLine(flow: Flow, time = isoNow()): string {
  const hops = flow.hops;
  let route = '';
  let hopList = '';
  for (let i = 0; i < hops.length; i++) {
    const h = hops[i]!;
    const layer = quoted(h.layer);
    const listen = quoted(h.listen);
    const sep = i === 0 ? '' : ',';
    route += `${sep}${layer}:${listen}`;
    hopList +=
      `${sep}{"layer":${layer},"listen":${listen}${h.upstream === undefined ? '' : `,"upstream":${quoted(h.upstream)}`}` +
      `${h.connectMs === undefined ? '' : `,"connectMs":${millis(h.connectMs)}`}${h.durationMs === undefined ? '' : `,"durationMs":${millis(h.durationMs)}`}}`;
  }
  if (flow.pod !== undefined) route += `${route ? ',' : ''}"pod":${quoted(flow.pod)}`;
  const duration = hops[0]?.durationMs;
  return (
    `{"time":"${time}","kind":${KIND_JSON[flow.mode]},"servicePort":${quoted(flow.servicePort)},"protocol":${quoted(flow.protocol)},"mode":${quoted(flow.mode)},` +
    `"client":${str(hostPort(flow.clientAddress, flow.clientPort))},"route":{${route}}${flow.podName === undefined ? '' : `,"pod":${quoted(flow.podName)}`}` +
    `${flow.node === undefined ? '' : `,"node":${quoted(flow.node)}`}${flow.status === undefined ? '' : `,"status":${flow.status}`}` +
    `${flow.method === undefined ? '' : `,"method":${quoted(flow.method)}`}${flow.path === undefined ? '' : `,"path":${str(flow.path)}`}` +
    `${flow.kernel === undefined ? '' : `,"kernel":"${flow.kernel}"`},"bytesIn":${flow.bytesUnknown ? null : flow.bytesIn},"bytesOut":${flow.bytesUnknown ? null : flow.bytesOut}${duration === undefined ? '' : `,"durationMs":${millis(duration)}`},"hops":[${hopList}]` +
    `${flow.note === undefined ? '' : `,"note":${str(flow.note)}`}${flow.error === undefined ? '' : `,"error":${str(flow.error)}`}}`
  );
}

const color = (on: boolean) => (code: number, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

/** TEXT_LEGEND explains the numbers of a text line once, above the first one. */
export const TEXT_LEGEND =
  'traffic log: one line per L4 connection, L7 request or UDP session: the route, the pod, ↑bytes from the client ↓bytes to it, and per hop the time to connect to the next hop and the total time';

/** formatText prints a record as one readable line: route, pod, status, bytes and each hop's connect and total time. */
export function formatText(r: FlowRecord, useColor: boolean): string {
  const c = color(useColor);
  const ms = (n: number | undefined) => (n === undefined ? '-' : n < 1 ? `${(n * 1000).toFixed(0)}µs` : `${n.toFixed(1)}ms`);
  const path = r.hops.map((h) => `${h.layer} ${h.listen}`).join(' → ');
  const pod = r.pod ? `pod ${r.pod} ${r.route.pod}` : r.route.pod ? `endpoint ${r.route.pod}` : c(31, 'no endpoint');
  const kind = r.kind === 'session' ? 'datagrams' : r.kind;
  const what = r.kind === 'request' ? `${r.method ?? ''} ${r.path ?? ''} ${statusColor(c, r.status)}` : r.kernel ? `${kind} (kernel ${r.kernel})` : kind;
  const hops = r.hops.map((h) => `${h.layer}: ${h.connectMs === undefined ? '' : `connect ${ms(h.connectMs)} `}total ${ms(h.durationMs)}`).join(' · ');
  const err = (r.note ? ` ${c(33, r.note)}` : '') + (r.error ? ` ${c(31, r.error)}` : '');
  return `${c(2, r.time.slice(11, 23))} ${c(1, r.servicePort)} ${what} ${r.client} → ${path} → ${pod}  ↑${r.bytesIn ?? '?'}B ↓${r.bytesOut ?? '?'}B  ${c(2, hops)}${err}`;
}

function statusColor(c: (code: number, s: string) => string, status: number | undefined): string {
  if (status === undefined) return '-';
  return c(status >= 500 ? 31 : status >= 400 ? 33 : 32, String(status));
}

/** FLUSH_MS is how long a line may wait for company: under load one write then carries a batch of lines. */
export const FLUSH_MS = 20;
/** MAX_PENDING bounds what waits for a flush: past it, the batch goes out at once. */
const MAX_PENDING = 512;

/**
 * TrafficLog writes records to a stream in the chosen format. Lines go out at most FLUSH_MS after they are written, in
 * one write: under load that is one syscall and one UTF-8 encoding for a hundred requests. A person watching cannot
 * see a 20 ms wait. A finished flow waits as it is and its JSON line is made at flush time, with the other waiting
 * lines in a row: the formatting code and its caches stay warm across a batch, instead of running cold between two
 * requests (measured in place, it cost several times what a microbenchmark shows).
 */
export class TrafficLog {
  /** pending is what waits for the next flush: finished lines, or flows whose JSON line is made at flush. */
  private readonly pending: (Flow | string)[] = [];
  /** times[i] is when pending[i] was written (ms since the epoch), for its line's timestamp. */
  private readonly times: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private legendShown = false;

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

  /** write takes a finished line (jsonLine) or a record to format now, as JSON or text. */
  write(entry: FlowRecord | string): void {
    if (this.format === 'none') return;
    if (this.format === 'text' && !this.legendShown) {
      this.legendShown = true;
      this.queue(this.useColor ? `\x1b[2m${TEXT_LEGEND}\x1b[0m` : TEXT_LEGEND, 0);
    }
    this.queue(typeof entry === 'string' ? entry : this.format === 'json' ? JSON.stringify(entry) : formatText(entry, this.useColor), 0);
  }

  /**
   * writeFlow queues a finished flow for a JSON line made at flush time, stamped with `now`. The flow is read then, so
   * the caller must be done with it: a flow is logged once, when its first hop closes.
   */
  writeFlow(flow: Flow, now = Date.now()): void {
    if (this.format !== 'json') return;
    this.queue(flow, now);
  }

  private queue(entry: Flow | string, now: number): void {
    this.pending.push(entry);
    this.times.push(now);
    if (this.pending.length >= MAX_PENDING) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** flush writes what is pending; shutdown calls it so no line is lost. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const { pending, times } = this;
    if (pending.length === 0) return;
    let text = '';
    for (let i = 0; i < pending.length; i++) {
      const entry = pending[i]!;
      text += `${typeof entry === 'string' ? entry : jsonLine(entry, isoNow(times[i]))}\n`;
    }
    pending.length = 0;
    times.length = 0;
    this.out.write(text);
  }
}

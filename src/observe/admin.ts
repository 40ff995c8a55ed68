// admin.ts — the admin listener (kube-proxy's 127.0.0.1:10249): /metrics, /healthz, /livez, the dashboard and its feed.
// It answers only requests that name it (no DNS rebinding), changes state only for requests a web page cannot forge,
// and gives each dashboard feed bounded memory. docs/security.md says what it exposes.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { DesiredState } from '../model/desired-state.js';
import type { PodAction } from '../runtime.js';
import type { FlowRecord } from './log.js';
import type { Observers } from './observer.js';
import type { SyncHealth } from './health.js';
import { closeServer, listenOn, trackSockets } from '../net/sockets.js';

export interface AdminHooks {
  state(): DesiredState | undefined;
  pod(name: string, action: PodAction, restartAfterMs?: number): Promise<boolean>;
  nodeportHop: string;
  /** proxyMode is who translates: userspace, or the kernel with nftables or iptables rules. */
  proxyMode: string;
  /** stats are the process's own counters per Service port, for a dashboard opened late. */
  stats?(): unknown;
  /** rules are kube-proxy's rules for one Service port, for the dashboard's Service box. */
  rules?(servicePort: string, mode: 'nftables' | 'iptables'): string | undefined;
}

// The build copies dashboard.html next to this file (scripts/copy-assets.mjs).
const DASHBOARD_URL = new URL('./dashboard.html', import.meta.url);

/** MAX_FEED_CLIENTS caps open dashboard feeds; each costs a listener per flow. */
export const MAX_FEED_CLIENTS = 32;
/** FEED_BUFFER_BYTES is what a feed may hold unsent; past it, events are dropped for that client and counted. */
export const FEED_BUFFER_BYTES = 256 * 1024;
/** FEED_HISTORY is how many recent events a reconnecting feed can catch up on (by Last-Event-ID). */
const FEED_HISTORY = 512;
/**
 * FEED_IDLE_MS ends a page's feed (`/events?idle=1`) after this long without events; the page reconnects after
 * FEED_RETRY_MS and catches up from the history. A browser that waits for the network to go quiet, as headless
 * Chromium's --virtual-time-budget does, then sees it go quiet.
 */
const FEED_IDLE_MS = 1500;
const FEED_RETRY_MS = 1000;
/** FEED_GRACE_MS keeps recording after the last feed closed, so a reconnecting page misses nothing. */
const FEED_GRACE_MS = 10_000;

/** CLIENT_HEADER is the header a state-changing request must carry: a cross-origin form cannot send it. */
export const CLIENT_HEADER = 'x-portlab-client';

/** AdminServer serves operators and the workshop screen. It never touches the forwarding path. */
export class AdminServer {
  readonly server: http.Server;
  private readonly sockets: Set<net.Socket>;
  private dashboard?: string;
  private feeds = 0;
  /** history holds the last FEED_HISTORY events, as written, with their ids; recorded while a feed is or was just open. */
  private readonly history: { id: number; text: string }[] = [];
  private lastId = 0;
  private readonly events = new EventEmitter();
  private recording = false;
  private stopRecording?: NodeJS.Timeout;
  private readonly onFlowEvent = (r: FlowRecord) => this.record('flow', JSON.stringify(r));
  private readonly onTopologyEvent = () => this.record('topology', '{}');

  constructor(
    private readonly observers: Observers,
    private readonly health: SyncHealth,
    private readonly hooks: AdminHooks,
  ) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`500 Internal Server Error: ${String(err)}\n`);
      });
    });
    this.sockets = trackSockets(this.server);
    this.events.setMaxListeners(MAX_FEED_CLIENTS + 1);
  }

  /**
   * hostAllowed: the Host header names an IP address or localhost. A page on another domain that rebinds its name to
   * 127.0.0.1 sends its own name as Host, and is refused.
   */
  private hostAllowed(host: string | undefined): boolean {
    if (!host) return false;
    const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
    return name === 'localhost' || net.isIP(name) !== 0;
  }

  /** mayChange: a POST from the CLI or the dashboard; never a cross-origin form or fetch without a preflight. */
  private mayChange(req: http.IncomingMessage): string | undefined {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let host = '';
      try {
        host = new URL(origin).host;
      } catch {
        return `Origin ${origin} is not a URL`;
      }
      if (host !== req.headers.host) return `Origin ${origin} is not this admin listener (${req.headers.host})`;
    }
    if (req.headers[CLIENT_HEADER] === undefined) return `a state-changing request needs the ${CLIENT_HEADER} header (portlab pod and the dashboard send it)`;
    return undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!this.hostAllowed(req.headers.host)) {
      plain(res, 403, `403 Forbidden: Host ${JSON.stringify(req.headers.host ?? '')} does not name this admin listener; use an IP address or localhost\n`);
      return;
    }
    let url: URL;
    let pathname: string;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
      pathname = decodeURIComponent(url.pathname);
    } catch {
      plain(res, 400, `400 Bad Request: ${JSON.stringify(req.url)} is not a valid path\n`);
      return;
    }
    if (pathname === '/metrics') {
      const body = await this.observers.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.observers.metrics.registry.contentType }).end(body);
      return;
    }
    if (pathname === '/healthz' || pathname === '/livez') {
      const ok = this.health.healthy;
      json(res, ok ? 200 : 503, this.health.json());
      return;
    }
    if (pathname === '/api/topology') {
      json(res, 200, { nodeportHop: this.hooks.nodeportHop, proxyMode: this.hooks.proxyMode, state: this.hooks.state() ?? null, health: this.health.json(), stats: this.hooks.stats?.() ?? null });
      return;
    }
    if (pathname === '/api/stats') {
      json(res, 200, this.hooks.stats?.() ?? {});
      return;
    }
    if (pathname === '/api/rules') {
      const mode = url.searchParams.get('mode') === 'iptables' ? 'iptables' : 'nftables';
      const text = this.hooks.rules?.(url.searchParams.get('port') ?? '', mode);
      if (text === undefined) plain(res, 404, 'no such Service port\n');
      else plain(res, 200, text);
      return;
    }
    const pod = /^\/api\/pods\/([^/]+)\/(kill|start|ready|unready)$/.exec(pathname);
    if (pod) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        plain(res, 405, `405 Method Not Allowed: ${pathname} takes POST\n`);
        return;
      }
      const refused = this.mayChange(req);
      if (refused) {
        plain(res, 403, `403 Forbidden: ${refused}\n`);
        return;
      }
      // ?restartAfter=MS or never: how long a killed pod stays down.
      const after = url.searchParams.get('restartAfter');
      const restartAfterMs = after === null ? undefined : after === 'never' ? Number.POSITIVE_INFINITY : Number(after);
      const ok = await this.hooks.pod(pod[1]!, pod[2] as PodAction, restartAfterMs !== undefined && Number.isNaN(restartAfterMs) ? undefined : restartAfterMs);
      json(res, ok ? 200 : 404, { ok, pod: pod[1], action: pod[2] });
      return;
    }
    if (pathname === '/events') {
      this.stream(req, res, url.searchParams.get('idle') === '1');
      return;
    }
    if (pathname === '/' || pathname === '/index.html') {
      this.dashboard ??= readFileSync(DASHBOARD_URL, 'utf8');
      res
        .writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        })
        .end(this.dashboard);
      return;
    }
    plain(res, 404, 'not found: try /, /metrics, /healthz, /livez, /api/topology, /api/stats, /events\n');
  }

  private record(event: string, data: string): void {
    const id = ++this.lastId;
    const text = `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
    this.history.push({ id, text });
    if (this.history.length > FEED_HISTORY) this.history.shift();
    this.events.emit('event', text);
  }

  /** The observers' feed is read only while a dashboard is (or was just) open: otherwise a flow builds no record. */
  private startRecording(): void {
    clearTimeout(this.stopRecording);
    if (this.recording) return;
    this.recording = true;
    this.observers.feed.on('flow', this.onFlowEvent);
    this.observers.feed.on('topology', this.onTopologyEvent);
  }

  private feedClosed(): void {
    if (--this.feeds > 0) return;
    clearTimeout(this.stopRecording);
    this.stopRecording = setTimeout(() => {
      this.recording = false;
      this.observers.feed.off('flow', this.onFlowEvent);
      this.observers.feed.off('topology', this.onTopologyEvent);
    }, FEED_GRACE_MS);
    this.stopRecording.unref();
  }

  /**
   * stream sends each finished flow as a Server-Sent Event with an id, and 'topology' after each sync. A client that
   * reconnects with Last-Event-ID gets what it missed (or a 'topology' event to reload, when that is gone from the
   * history). A client that does not read keeps at most FEED_BUFFER_BYTES unsent: later events are dropped for it,
   * and a 'dropped' event says how many once it catches up. The number of feeds is capped.
   */
  private stream(req: http.IncomingMessage, res: http.ServerResponse, idle: boolean): void {
    if (this.feeds >= MAX_FEED_CLIENTS) {
      res.setHeader('retry-after', '5');
      plain(res, 503, `503 Service Unavailable: ${MAX_FEED_CLIENTS} dashboard feeds are open already\n`);
      return;
    }
    this.feeds++;
    this.startRecording();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // The id marks where this client starts: its reconnect names it, and catches up on everything after it.
    res.write(`: portlab live feed\nretry: ${FEED_RETRY_MS}\nid: ${this.lastId}\n\n`);
    let dropped = 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (!idle) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => res.end(), FEED_IDLE_MS);
    };
    const send = (text: string) => {
      if (res.writableEnded) return; // ended for idleness: the reconnect catches up from the history
      if (res.writableLength > FEED_BUFFER_BYTES) {
        dropped++;
        this.observers.metrics.feedDropped++;
        return;
      }
      if (dropped > 0) {
        res.write(`event: dropped\ndata: {"count":${dropped}}\n\n`);
        dropped = 0;
      }
      res.write(text);
      armIdle();
    };
    const header = req.headers['last-event-id'];
    const last = header === undefined || header === '' ? NaN : Number(header);
    if (Number.isInteger(last) && last >= 0) {
      const first = this.history[0]?.id ?? this.lastId + 1;
      if (first > last + 1) send('event: topology\ndata: {}\n\n');
      for (const e of this.history) if (e.id > last) send(e.text);
    }
    armIdle();
    this.events.on('event', send);
    const ping = setInterval(() => send(': ping\n\n'), 15_000);
    res.once('close', () => {
      clearTimeout(idleTimer);
      clearInterval(ping);
      this.events.off('event', send);
      this.feedClosed();
    });
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  get feedClients(): number {
    return this.feeds;
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets, 0);
  }
}

function plain(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

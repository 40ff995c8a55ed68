// admin.ts — the admin listener (kube-proxy's 127.0.0.1:10249): /metrics, /healthz, /livez, the dashboard and its feed.
// It answers only requests that name it (no DNS rebinding), changes state only for requests a web page cannot forge,
// and gives each dashboard feed bounded memory. docs/security.md says what it exposes.
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
/** CLIENT_HEADER is the header a state-changing request must carry: a cross-origin form cannot send it. */
export const CLIENT_HEADER = 'x-portlab-client';

/** AdminServer serves operators and the workshop screen. It never touches the forwarding path. */
export class AdminServer {
  readonly server: http.Server;
  private readonly sockets: Set<net.Socket>;
  private dashboard?: string;
  private feeds = 0;

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
      json(res, 200, { nodeportHop: this.hooks.nodeportHop, state: this.hooks.state() ?? null, health: this.health.json(), stats: this.hooks.stats?.() ?? null });
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
      this.stream(req, res);
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

  /**
   * stream sends each finished flow as a Server-Sent Event, and 'topology' after each sync. A client that does not
   * read keeps at most FEED_BUFFER_BYTES unsent: later events are dropped for it, and a 'dropped' event says how many
   * once it catches up. The number of feeds is capped.
   */
  private stream(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.feeds >= MAX_FEED_CLIENTS) {
      res.setHeader('retry-after', '5');
      plain(res, 503, `503 Service Unavailable: ${MAX_FEED_CLIENTS} dashboard feeds are open already\n`);
      return;
    }
    this.feeds++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': portlab live feed\n\n');
    let dropped = 0;
    const send = (text: string) => {
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
    };
    const onFlow = (r: FlowRecord) => send(`event: flow\ndata: ${JSON.stringify(r)}\n\n`);
    const onTopology = () => send('event: topology\ndata: {}\n\n');
    this.observers.feed.on('flow', onFlow);
    this.observers.feed.on('topology', onTopology);
    const ping = setInterval(() => send(': ping\n\n'), 15_000);
    req.socket.once('close', () => {
      this.feeds--;
      clearInterval(ping);
      this.observers.feed.off('flow', onFlow);
      this.observers.feed.off('topology', onTopology);
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

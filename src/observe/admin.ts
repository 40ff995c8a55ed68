// admin.ts — the admin listener (kube-proxy's 127.0.0.1:10249): /metrics, /healthz, /livez, the dashboard and its feed.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
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
}

// The build copies dashboard.html next to this file (scripts/copy-assets.mjs).
const DASHBOARD_URL = new URL('./dashboard.html', import.meta.url);

/** AdminServer serves operators and the workshop screen. It never touches the forwarding path. */
export class AdminServer {
  readonly server: http.Server;
  private readonly sockets: Set<net.Socket>;
  private dashboard?: string;

  constructor(
    private readonly observers: Observers,
    private readonly health: SyncHealth,
    private readonly hooks: AdminHooks,
  ) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
    });
    this.sockets = trackSockets(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/metrics') {
      const body = await this.observers.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.observers.metrics.registry.contentType }).end(body);
      return;
    }
    if (url.pathname === '/healthz' || url.pathname === '/livez') {
      const ok = this.health.healthy;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(this.health.json()));
      return;
    }
    if (url.pathname === '/api/topology') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ nodeportHop: this.hooks.nodeportHop, state: this.hooks.state() ?? null, health: this.health.json() }));
      return;
    }
    const pod = /^\/api\/pods\/([^/]+)\/(kill|start|ready|unready)$/.exec(url.pathname);
    if (pod && req.method === 'POST') {
      const name = decodeURIComponent(pod[1]!);
      // ?restartAfter=MS or never: how long a killed pod stays down.
      const after = url.searchParams.get('restartAfter');
      const restartAfterMs = after === null ? undefined : after === 'never' ? Number.POSITIVE_INFINITY : Number(after);
      const ok = await this.hooks.pod(name, pod[2] as PodAction, restartAfterMs !== undefined && Number.isNaN(restartAfterMs) ? undefined : restartAfterMs);
      res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ ok, pod: name, action: pod[2] }));
      return;
    }
    if (url.pathname === '/events') {
      this.stream(req, res);
      return;
    }
    if (url.pathname === '/' || url.pathname === '/index.html') {
      this.dashboard ??= readFileSync(DASHBOARD_URL, 'utf8');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(this.dashboard);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /, /metrics, /healthz, /livez, /api/topology, /events\n');
  }

  /** stream sends each finished flow as a Server-Sent Event, and a 'topology' event on every sync. */
  private stream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': portlab live feed\n\n');
    const onFlow = (r: FlowRecord) => res.write(`event: flow\ndata: ${JSON.stringify(r)}\n\n`);
    const onTopology = () => res.write(`event: topology\ndata: {}\n\n`);
    this.observers.feed.on('flow', onFlow);
    this.observers.feed.on('topology', onTopology);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.socket.once('close', () => {
      clearInterval(ping);
      this.observers.feed.off('flow', onFlow);
      this.observers.feed.off('topology', onTopology);
    });
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets, 0);
  }
}

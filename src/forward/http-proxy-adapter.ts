// http-proxy-adapter.ts — the one module that touches http-proxy. It closes the traps listed in shared/PITFALLS.md.
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Conntrack } from './flow.js';

/** ProxyFailure is why a request could not be forwarded, mapped to the status portlab answers with. */
export type ProxyFailure = { status: 502 | 504; code: string };

/** ProxyHooks lets the caller see each stage of one proxied request without touching http-proxy. */
export interface ProxyHooks {
  onUpstreamSocket?(connectedAt: number): void;
  onResponse?(status: number): void;
  onFailure(failure: ProxyFailure): void;
}

export interface ProxyAdapterOptions {
  /** upstreamTimeoutMs answers 504 when the upstream has not answered in time; 0 means never. */
  upstreamTimeoutMs: number;
  conntrack: Conntrack;
}

interface RequestContext {
  hooks: ProxyHooks;
  timedOut: boolean;
}

const CONTEXT = Symbol('portlab.proxyContext');
type WithContext = { [CONTEXT]?: RequestContext };

/** keepAliveAgent pools upstream sockets; `internal` sockets are portlab's own node → service hop, tracked like conntrack. */
function keepAliveAgent(conntrack: Conntrack | undefined): http.Agent {
  const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: 512, maxFreeSockets: 256, timeout: 30_000 });
  const create = (options: net.NetConnectOpts): net.Socket => {
    const socket = net.createConnection(options);
    socket.setNoDelay(true);
    if (conntrack) conntrack.track(socket, null);
    return socket;
  };
  (agent as unknown as { createConnection: typeof create }).createConnection = create;
  return agent;
}

/** ProxyAdapter forwards requests and upgrades to an address:port, and always answers or closes the client. */
export class ProxyAdapter {
  private readonly proxy: httpProxy;
  private readonly internalAgent: http.Agent;
  private readonly podAgent: http.Agent;

  constructor(private readonly options: ProxyAdapterOptions) {
    this.internalAgent = keepAliveAgent(options.conntrack);
    this.podAgent = keepAliveAgent(undefined);
    // xfwd stays off: portlab writes X-Forwarded-* itself, so the original client survives the node → service hop.
    this.proxy = httpProxy.createProxyServer({ xfwd: false, changeOrigin: false, ws: true });
    this.proxy.on('proxyReq', (proxyReq, req, res) => this.onProxyReq(proxyReq, req as http.IncomingMessage & WithContext, res));
    this.proxy.on('proxyRes', (proxyRes, req, res) => this.onProxyRes(proxyRes, req as http.IncomingMessage & WithContext, res));
    // Without an 'error' listener http-proxy takes the process down; per-call callbacks below handle each error.
    this.proxy.on('error', () => {});
  }

  private onProxyReq(proxyReq: http.ClientRequest, req: http.IncomingMessage & WithContext, res: http.ServerResponse): void {
    const ctx = req[CONTEXT];
    if (!ctx) return;
    if (this.options.upstreamTimeoutMs > 0) {
      proxyReq.setTimeout(this.options.upstreamTimeoutMs, () => {
        ctx.timedOut = true;
        proxyReq.destroy();
      });
    }
    // http-proxy emits 'proxyReq' from the request's 'socket' event, so the socket is already here.
    const socket = proxyReq.socket as net.Socket | null;
    if (socket?.connecting) socket.once('connect', () => ctx.hooks.onUpstreamSocket?.(performance.now()));
    else ctx.hooks.onUpstreamSocket?.(performance.now());
    // http-proxy does not cancel the upstream request when the client goes away (http-proxy#1586).
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
  }

  private onProxyRes(proxyRes: http.IncomingMessage, req: http.IncomingMessage & WithContext, res: http.ServerResponse): void {
    req[CONTEXT]?.hooks.onResponse?.(proxyRes.statusCode ?? 0);
    // An upstream that dies mid-body must not leave the client with a 200 and a hang: cut the client too.
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
  }

  /** web forwards one request. Every failure ends in hooks.onFailure, before or instead of a response. */
  web(req: http.IncomingMessage, res: http.ServerResponse, host: string, port: number, internal: boolean, hooks: ProxyHooks): void {
    const ctx: RequestContext = { hooks, timedOut: false };
    (req as WithContext)[CONTEXT] = ctx;
    this.proxy.web(req, res, { target: { host, port, protocol: 'http:' }, agent: internal ? this.internalAgent : this.podAgent }, (err: NodeJS.ErrnoException) => {
      hooks.onFailure(ctx.timedOut ? { status: 504, code: 'ETIMEDOUT' } : { status: 502, code: err.code ?? 'EPROTO' });
    });
  }

  /** ws forwards a WebSocket upgrade. On failure the raw socket is destroyed: a socket has no writeHead. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, host: string, port: number, internal: boolean, hooks: ProxyHooks): void {
    (req as WithContext)[CONTEXT] = { hooks, timedOut: false };
    this.proxy.ws(req, socket, head, { target: { host, port, protocol: 'http:' }, agent: internal ? this.internalAgent : this.podAgent }, (err: NodeJS.ErrnoException) => {
      hooks.onFailure({ status: 502, code: err.code ?? 'EPROTO' });
      // Nothing sent yet: a raw status line still tells the client why. Never writeHead: this is a socket.
      const s = socket as net.Socket;
      if (s.writable && s.bytesWritten === 0) s.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  close(): void {
    this.internalAgent.destroy();
    this.podAgent.destroy();
    this.proxy.close();
  }
}

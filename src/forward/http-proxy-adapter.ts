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

// Per-request state rides on the request under a symbol; a WeakMap here cost measurably more in GC per request.
const CONTEXT = Symbol('portlab.proxyContext');
type WithContext = http.IncomingMessage & { [CONTEXT]?: RequestContext };
const contexts = {
  get: (req: http.IncomingMessage) => (req as WithContext)[CONTEXT],
  set: (req: http.IncomingMessage, ctx: RequestContext) => {
    (req as WithContext)[CONTEXT] = ctx;
  },
};

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
  private readonly internalAgent: http.Agent;
  private readonly podAgent: http.Agent;
  /**
   * One http-proxy server per upstream address, made on first use: its target and agent are set once, so no
   * per-request options object is merged and parsed (http-proxy's per-call options cost as much as the rest).
   */
  private readonly proxies = new Map<string, httpProxy>();

  constructor(private readonly options: ProxyAdapterOptions) {
    this.internalAgent = keepAliveAgent(options.conntrack);
    this.podAgent = keepAliveAgent(undefined);
  }

  private proxyFor(host: string, port: number, internal: boolean): httpProxy {
    const key = `${host}:${port}`;
    let proxy = this.proxies.get(key);
    if (proxy) return proxy;
    // xfwd stays off: portlab writes X-Forwarded-* itself, so the original client survives the node → service hop.
    proxy = httpProxy.createProxyServer({ target: { host, port, protocol: 'http:' }, agent: internal ? this.internalAgent : this.podAgent, xfwd: false, changeOrigin: false, ws: true });
    proxy.on('proxyReq', (proxyReq, req, res) => this.onProxyReq(proxyReq, req, res));
    proxy.on('proxyRes', (proxyRes, req, res) => this.onProxyRes(proxyRes, req, res));
    // Without an 'error' listener http-proxy takes the process down. Every error ends in the request's onFailure.
    proxy.on('error', (err: NodeJS.ErrnoException, req, resOrSocket) => this.onError(err, req, resOrSocket));
    this.proxies.set(key, proxy);
    return proxy;
  }

  private onProxyReq(proxyReq: http.ClientRequest, req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = contexts.get(req);
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

  private onProxyRes(proxyRes: http.IncomingMessage, req: http.IncomingMessage, res: http.ServerResponse): void {
    contexts.get(req)?.hooks.onResponse?.(proxyRes.statusCode ?? 0);
    // An upstream that dies mid-body must not leave the client with a 200 and a hang: cut the client too.
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
  }

  private onError(err: NodeJS.ErrnoException, req: http.IncomingMessage, resOrSocket: http.ServerResponse | net.Socket): void {
    const ctx = contexts.get(req);
    if (resOrSocket instanceof net.Socket) {
      ctx?.hooks.onFailure({ status: 502, code: err.code ?? 'EPROTO' });
      // Nothing sent yet: a raw status line still tells the client why. Never writeHead: this is a socket.
      if (resOrSocket.writable && resOrSocket.bytesWritten === 0) resOrSocket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else resOrSocket.destroy();
      return;
    }
    if (!ctx) {
      if (!resOrSocket.headersSent) resOrSocket.writeHead(502).end();
      else resOrSocket.destroy();
      return;
    }
    ctx.hooks.onFailure(ctx.timedOut ? { status: 504, code: 'ETIMEDOUT' } : { status: 502, code: err.code ?? 'EPROTO' });
  }

  /** web forwards one request. Every failure ends in hooks.onFailure, before or instead of a response. */
  web(req: http.IncomingMessage, res: http.ServerResponse, host: string, port: number, internal: boolean, hooks: ProxyHooks): void {
    contexts.set(req, { hooks, timedOut: false });
    this.proxyFor(host, port, internal).web(req, res);
  }

  /** ws forwards a WebSocket upgrade. On failure the raw socket is closed: a socket has no writeHead. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, host: string, port: number, internal: boolean, hooks: ProxyHooks): void {
    contexts.set(req, { hooks, timedOut: false });
    this.proxyFor(host, port, internal).ws(req, socket, head);
  }

  close(): void {
    this.internalAgent.destroy();
    this.podAgent.destroy();
    for (const p of this.proxies.values()) p.close();
    this.proxies.clear();
  }
}

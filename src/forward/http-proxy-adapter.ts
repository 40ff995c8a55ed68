// http-proxy-adapter.ts — the one module that touches http-proxy. It closes http-proxy's known traps (see docs/ARCHITECTURE.md).
import http from 'node:http';
import net from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Conntrack } from './flow.js';
import type { Upstream } from './route.js';

/** ProxyFailure is why a request could not be forwarded, mapped to the status portlab answers with. */
export type ProxyFailure = { status: 502 | 503 | 504; code: string };

/** ProxyHooks lets the caller see each stage of one proxied request without touching http-proxy. */
export interface ProxyHooks {
  onUpstreamSocket?(connectedAt: number): void;
  onResponse?(status: number): void;
  onFailure(failure: ProxyFailure): void;
  /** onCutShort: the pod's response ended before its whole body came (the client's connection is cut too). */
  onCutShort?(): void;
}

export interface ProxyAdapterOptions {
  /** upstreamTimeoutMs answers 504 when the upstream has not answered in time, queued time included; 0 means never. */
  upstreamTimeoutMs: number;
  /** upstreamConnections caps connections per upstream; as many requests again may wait, and beyond that get 503. */
  upstreamConnections?: number;
  conntrack: Conntrack;
}

/** UPSTREAM_CONNECTIONS is the default cap of connections to one upstream (and of requests waiting for one). */
export const UPSTREAM_CONNECTIONS = 512;

interface RequestContext {
  hooks: ProxyHooks;
  /** proxyReq lets a client abort reach the request to the pod. */
  proxyReq: http.ClientRequest | undefined;
  /** proxyRes is the pod's answer once it came: an error after a complete answer (an early answer, then a close) is no failure. */
  proxyRes: http.IncomingMessage | undefined;
  timedOut: boolean;
  /** queuedAt is when the request began to wait for a pooled connection, if it had to. */
  queuedAt?: number;
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

// Hop-by-hop headers (RFC 9110 §7.6.1) end at portlab, both ways. Node writes its own Connection and framing for
// the client; the agent writes them for the pod.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
// Their name lengths: a header of any other length is end-to-end without lower-casing it (no string made per header).
const HOP_LENGTHS = new Set([...HOP_BY_HOP].map((h) => h.length));
// On a request, Transfer-Encoding stays: http-proxy hands it to Node, which frames the body it streams to the pod.
const REQUEST_HOP_BY_HOP = [...HOP_BY_HOP].filter((h) => h !== 'connection' && h !== 'transfer-encoding');

/** connectionNames are the headers a Connection header names as hop-by-hop; the usual "keep-alive" or "close" name none. */
function connectionNames(value: string | undefined): string[] | undefined {
  return value === undefined || value === 'keep-alive' || value === 'close' ? undefined : value.toLowerCase().split(',').map((h) => h.trim());
}

// A Connection header may not name these: they frame the request, or say where it goes (the class of CVE-2022-31813).
const NEVER_HOP_BY_HOP = new Set(['close', 'keep-alive', 'host', 'content-length', 'transfer-encoding']);

/**
 * dropRequestHopByHop: the client's `Connection: close` ends its own connection to portlab, not portlab's pooled
 * connection to the pod, and the headers it names stay here. The caller runs it before adding X-Forwarded-*, so a
 * client cannot name portlab's own headers away. Most requests carry none of these, and pay a lookup each.
 */
export function dropRequestHopByHop(headers: http.IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined && connection !== 'keep-alive') {
    for (const name of connectionNames(connection) ?? []) {
      if (!NEVER_HOP_BY_HOP.has(name)) delete headers[name];
    }
    headers.connection = 'keep-alive'; // assigned, not deleted: the agent would write the same
  }
  for (const name of REQUEST_HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
}

/** endToEndHeaders is the pod's raw header list without hop-by-hop headers, names and order as the pod sent them. */
function endToEndHeaders(proxyRes: http.IncomingMessage): string[] {
  const raw = proxyRes.rawHeaders;
  const listed = connectionNames(proxyRes.headers.connection);
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (HOP_LENGTHS.has(name.length) || listed !== undefined) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || listed?.includes(lower)) continue;
    }
    kept.push(name, raw[i + 1]!);
  }
  return kept;
}

// The client's response a pod's response is relayed to, kept on the pod's response: the relay's listeners are shared
// functions, not three closures made per response.
const CLIENT = Symbol('portlab.client');
const HOOKS = Symbol('portlab.hooks');
type Relayed = http.IncomingMessage & { [CLIENT]: http.ServerResponse; [HOOKS]?: ProxyHooks };

function onPodData(this: Relayed, chunk: Buffer): void {
  const res = this[CLIENT];
  if (!res.write(chunk)) {
    this.pause();
    res.once('drain', () => this.resume());
  }
}

function onPodEnd(this: Relayed): void {
  this[CLIENT].end(); // 'end' and 'close' come once: on() saves once()'s wrapper
}

/** onPodClose: an upstream that dies mid-body must not leave the client with a 200 and a hang: cut the client too. */
function onPodClose(this: Relayed): void {
  if (this.complete) return;
  this[HOOKS]?.onCutShort?.();
  this[CLIENT].destroy();
}

/**
 * relayResponse sends the pod's answer on: status, end-to-end headers in one writeHead, then the body with
 * backpressure. It stands in for http-proxy's outgoing passes and pipe() (its documented selfHandleResponse option),
 * which set each header with its own call and attach eight stream listeners to every response.
 */
function relayResponse(proxyRes: http.IncomingMessage, res: http.ServerResponse, hooks: ProxyHooks | undefined): void {
  const relayed = proxyRes as Relayed;
  relayed[CLIENT] = res;
  relayed[HOOKS] = hooks;
  proxyRes.on('close', onPodClose);
  if (res.headersSent || res.destroyed) {
    proxyRes.resume();
    return;
  }
  res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, endToEndHeaders(proxyRes));
  // A streamed answer (no Content-Length: SSE, long-polls, chunked) may send its first byte much later: the client
  // gets the headers now, as the pod sent them. A sized answer keeps headers and body in one write.
  if (proxyRes.headers['content-length'] === undefined) res.flushHeaders();
  proxyRes.on('data', onPodData);
  proxyRes.on('end', onPodEnd);
}

// The client request whose pod request http-proxy is building right now. proxy.web() runs synchronously from the
// call to the point where it pipes the body source into the pod's request, so the body source can read it there.
let building: http.IncomingMessage | undefined;

/**
 * clientPath gives the pod's request the client's own request-target, before its request line is written. Left to
 * itself, http-proxy rebuilds the path through url.parse() and a join that turns `//` and `\` into `/`, so a pod would
 * see another path than the client sent; kube-proxy never touches it. It also keeps the pod's request in the client
 * request's context, so a client abort can cancel it from here on.
 */
function clientPath(dest: Writable): http.IncomingMessage {
  const req = building!;
  building = undefined;
  const pod = dest as http.ClientRequest;
  const ctx = contexts.get(req);
  if (ctx) ctx.proxyReq = pod;
  if (!pod.headersSent && req.url !== undefined) pod.path = req.url;
  return req;
}

/**
 * The body sources stand in for http-proxy's `options.buffer`, which it pipes into the pod's request. A request
 * without a body ends the pod's request at once: piping an empty IncomingMessage costs seven listeners and a
 * scheduled resume to carry zero bytes. A request with one is piped, as http-proxy would.
 */
const EMPTY_BODY = { pipe: <T extends Writable>(dest: T): T => (clientPath(dest), dest.end() as T) };
const STREAMED_BODY = { pipe: <T extends Writable>(dest: T): T => clientPath(dest).pipe(dest) };

/**
 * forHttpProxy hands http-proxy the request's headers in reverse: it copies them into the pod's request last to first
 * (util._extend walks backwards), so the pod gets them in the client's order. Order matters past Node's header cap:
 * with 1,000 headers reversed, Host fell past it and the pod answered 400.
 */
function forHttpProxy(req: http.IncomingMessage): void {
  const h = req.headers;
  const keys = Object.keys(h);
  const reversed: http.IncomingHttpHeaders = {};
  for (let i = keys.length - 1; i >= 0; i--) reversed[keys[i]!] = h[keys[i]!];
  req.headers = reversed;
}

/** hasBody: a request has a body only with Content-Length above 0 or Transfer-Encoding (RFC 9112 §6.3). */
function hasBody(headers: http.IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** PoolOptions are the request options Node's Agent names and opens a connection by; `servername` is its TLS name. */
type PoolOptions = http.ClientRequestArgs & { servername?: string };
type AddRequest = (this: http.Agent, req: http.ClientRequest, options: PoolOptions) => void;
const addRequest = (http.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;

/**
 * PoolAgent is Node's keep-alive Agent, handed only the request options that name and open a pooled connection.
 * Node's addRequest copies every option it gets into a null-prototype object, which V8 does on its slow path: with the
 * twenty-odd options of http-proxy's requests, that copy took 5% of portlab's CPU per L7 request (perf, c=32).
 * portlab's upstreams are host:port over plain TCP, so host, port, localAddress and family are all a connection needs;
 * `servername: ''` skips the TLS server name Node would otherwise work out from the Host header on every request.
 */
class PoolAgent extends http.Agent {
  constructor(maxSockets: number) {
    // The agent's own options are copied on every request too, so only keepAlive goes there; the pool's limits are
    // its documented properties. keepAliveMsecs stays at Node's 1000.
    super({ keepAlive: true });
    this.maxSockets = maxSockets;
    this.maxFreeSockets = Math.min(256, maxSockets);
  }

  /** poolName is the agent's name for host:port's pool and queue, worked out once per upstream by the caller. */
  poolName(host: string, port: number): string {
    return this.getName({ host, port });
  }

  /** waiting is how many requests wait for a connection to the pool (the agent's documented `requests` queues). */
  waiting(pool: string): number {
    return this.requests[pool]?.length ?? 0;
  }

  /** isWaiting: this request is still in the queue for a connection. Most requests find no queue at all. */
  isWaiting(req: http.ClientRequest, pool: string): boolean {
    const queue = this.requests[pool];
    return queue !== undefined && queue.length > 0 && queue.includes(req as never);
  }

  /** giveUp takes a request out of the queue: a destroyed request would otherwise wait there for a connection. */
  giveUp(req: http.ClientRequest, pool: string): void {
    const queue = this.requests[pool];
    const i = queue?.indexOf(req as never) ?? -1;
    if (i >= 0) queue!.splice(i, 1);
  }

  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs): void {
    const pool: PoolOptions = { host: options.host, port: options.port, servername: '' };
    // Both are part of the pool's name when set; portlab's upstream requests set neither, so neither is copied.
    if (options.localAddress !== undefined) pool.localAddress = options.localAddress;
    if (options.family !== undefined) pool.family = options.family;
    addRequest.call(this, req, pool);
  }
}

/** keepAliveAgent pools upstream sockets; `internal` sockets are portlab's own node → service hop, tracked like conntrack. */
function keepAliveAgent(conntrack: Conntrack | undefined, maxSockets: number): PoolAgent {
  // No agent `timeout`: it makes Node arm and re-arm a socket timer and listener on every request. Idle pooled sockets
  // end when the pod's own keep-alive timeout closes them, and at most maxFreeSockets wait per pod.
  const agent = new PoolAgent(maxSockets);
  const create = (options: net.NetConnectOpts): net.Socket => {
    const socket = net.createConnection(options);
    socket.setNoDelay(true);
    if (conntrack) conntrack.track(socket, null);
    return socket;
  };
  (agent as unknown as { createConnection: typeof create }).createConnection = create;
  return agent;
}

/**
 * closeAfterRefusedUpgrade: when the pod answers an upgrade with anything but 101, http-proxy relays the answer and
 * half-closes the client's socket, which stays open (and holds a descriptor) until the client closes it. A client
 * waiting for WebSocket frames never does, so the socket is closed once the answer has gone out.
 */
function closeAfterRefusedUpgrade(proxyReq: http.ClientRequest, socket: net.Socket): void {
  proxyReq.once('response', (res: http.IncomingMessage) => {
    if (res.statusCode === 101) return;
    socket.once('finish', () => socket.destroy());
  });
}

/** stopUpload ends the pod's request without the rest of the client's body, which Node then reads and drops. */
function stopUpload(req: http.IncomingMessage, pod: http.ClientRequest | undefined): void {
  req.unpipe();
  if (pod && !pod.destroyed) pod.destroy();
  req.resume();
}

/** UpstreamProxies are the http-proxy servers for one upstream address (see ProxyAdapter.proxies), and its pool's name. */
interface UpstreamProxies {
  streamed: httpProxy;
  bodiless: httpProxy;
  joined: httpProxy | undefined;
  /** pool names the agent's pool and queue for this upstream: a string built once, not per request. */
  pool: string;
}

/** ProxyAdapter forwards requests and upgrades to an address:port, and always answers or closes the client. */
export class ProxyAdapter {
  private readonly internalAgent: PoolAgent;
  private readonly podAgent: PoolAgent;
  private readonly maxWaiting: number;
  /**
   * http-proxy servers per upstream address, made on first use: target, agent and body source are set once, so no
   * per-request options object is merged and parsed (http-proxy's per-call options cost as much as the rest).
   * `bodiless` and `streamed` carry requests without and with a body; their body sources set the pod's request-target,
   * so http-proxy is told not to build one (url.parse and its path join cost more than the rest of its set-up).
   * `joined` keeps http-proxy's own path for WebSocket upgrades, whose request line is written before a body source
   * runs.
   */
  private readonly proxies = new Map<string, UpstreamProxies>();
  constructor(private readonly options: ProxyAdapterOptions) {
    const cap = options.upstreamConnections ?? UPSTREAM_CONNECTIONS;
    this.internalAgent = keepAliveAgent(options.conntrack, cap);
    this.podAgent = keepAliveAgent(undefined, cap);
    this.maxWaiting = cap;
  }

  /** proxiesFor is keyed by the upstream's address, a string made once per endpoint, so its hash is already known. */
  private proxiesFor(up: Upstream): UpstreamProxies {
    let set = this.proxies.get(up.address);
    if (!set) {
      const agent = up.internal ? this.internalAgent : this.podAgent;
      set = { streamed: this.createProxy(up, STREAMED_BODY, false), bodiless: this.createProxy(up, EMPTY_BODY, false), joined: undefined, pool: agent.poolName(up.host, up.port) };
      this.proxies.set(up.address, set);
    }
    return set;
  }

  private joinedFor(up: Upstream): httpProxy {
    const set = this.proxiesFor(up);
    return (set.joined ??= this.createProxy(up, STREAMED_BODY, true));
  }

  private createProxy(up: Upstream, body: typeof EMPTY_BODY, joinPath: boolean): httpProxy {
    // xfwd stays off: portlab writes X-Forwarded-* itself, so the original client survives the node → service hop.
    const proxy = httpProxy.createProxyServer({
      target: { host: up.host, port: up.port, protocol: 'http:' },
      agent: up.internal ? this.internalAgent : this.podAgent,
      xfwd: false,
      changeOrigin: false,
      ws: true,
      selfHandleResponse: true,
      // http-proxy only ever calls buffer.pipe(proxyReq).
      buffer: body as unknown as httpProxy.ServerOptions['buffer'],
      // toProxy skips url.parse(req.url) and ignorePath the join; clientPath sets the path before it is written.
      toProxy: !joinPath,
      ignorePath: !joinPath,
    });
    proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req));
    proxy.on('proxyRes', (proxyRes, req, res) => this.onProxyRes(proxyRes, req, res));
    proxy.on('proxyReqWs', (proxyReq: http.ClientRequest, _req: http.IncomingMessage, socket: net.Socket) => closeAfterRefusedUpgrade(proxyReq, socket));
    // Without an 'error' listener http-proxy takes the process down. Every error ends in the request's onFailure.
    proxy.on('error', (err: NodeJS.ErrnoException, req, resOrSocket) => this.onError(err, req, resOrSocket));
    return proxy;
  }

  /** onProxyReq runs once the pod's request has its socket: the upstream timeout and the connect timing start here. */
  private onProxyReq(proxyReq: http.ClientRequest, req: http.IncomingMessage): void {
    const ctx = contexts.get(req);
    if (!ctx) return;
    if (this.options.upstreamTimeoutMs > 0) {
      const left = ctx.queuedAt === undefined ? this.options.upstreamTimeoutMs : Math.max(1, this.options.upstreamTimeoutMs - (performance.now() - ctx.queuedAt));
      proxyReq.setTimeout(left, () => {
        ctx.timedOut = true;
        proxyReq.destroy();
      });
    }
    // http-proxy emits 'proxyReq' from the request's 'socket' event, so the socket is already here.
    const socket = proxyReq.socket as net.Socket | null;
    if (socket?.connecting) socket.once('connect', () => ctx.hooks.onUpstreamSocket?.(performance.now()));
    else ctx.hooks.onUpstreamSocket?.(performance.now());
  }

  private onProxyRes(proxyRes: http.IncomingMessage, req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = contexts.get(req);
    if (ctx) {
      ctx.proxyRes = proxyRes;
      ctx.hooks.onResponse?.(proxyRes.statusCode ?? 0);
      // --upstream-timeout is the time to the pod's answer: a stream or a long-poll body may pause for as long as it likes.
      ctx.proxyReq?.setTimeout(0);
    }
    relayResponse(proxyRes, res, ctx?.hooks);
    // An answer before the whole request body (413, 501, a redirect): the pod is done with the upload, so stop sending
    // it at once (a write could meet the pod's close before its answer is read), and let Node drop the rest.
    if (!req.complete) {
      req.unpipe();
      req.resume();
      proxyRes.once('end', () => stopUpload(req, ctx?.proxyReq));
    }
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
    // The pod answered in full and then closed while the client was still uploading: the answer stands.
    if (ctx.proxyRes?.complete) {
      stopUpload(req, ctx.proxyReq);
      return;
    }
    ctx.hooks.onFailure(ctx.timedOut ? { status: 504, code: 'ETIMEDOUT' } : { status: 502, code: err.code ?? 'EPROTO' });
  }

  /** web forwards one request. Every failure ends in hooks.onFailure, before or instead of a response. */
  web(req: http.IncomingMessage, res: http.ServerResponse, up: Upstream, hooks: ProxyHooks): void {
    const agent = up.internal ? this.internalAgent : this.podAgent;
    // A full pool with a full queue answers at once, as Envoy's circuit breakers do: never a hang behind slow clients.
    const set = this.proxiesFor(up);
    if (agent.waiting(set.pool) >= this.maxWaiting) {
      hooks.onFailure({ status: 503, code: 'UPSTREAM_BUSY' });
      return;
    }
    const ctx: RequestContext = { hooks, proxyReq: undefined, proxyRes: undefined, timedOut: false };
    contexts.set(req, ctx);
    const headers = req.headers;
    if (headers.expect !== undefined) this.expecting(req, res, up);
    else {
      const proxy = hasBody(headers) ? set.streamed : set.bodiless;
      forHttpProxy(req);
      building = req;
      try {
        proxy.web(req, res);
      } finally {
        building = undefined;
      }
    }
    // Time spent waiting for a pooled connection counts against --upstream-timeout.
    const pod = ctx.proxyReq;
    if (pod && this.options.upstreamTimeoutMs > 0 && agent.isWaiting(pod, set.pool)) {
      ctx.queuedAt = performance.now();
      const timer = setTimeout(() => {
        ctx.timedOut = true;
        agent.giveUp(pod, set.pool);
        pod.destroy();
        hooks.onFailure({ status: 504, code: 'ETIMEDOUT' });
      }, this.options.upstreamTimeoutMs);
      pod.once('socket', () => clearTimeout(timer));
      pod.once('close', () => clearTimeout(timer));
    }
  }

  /**
   * expecting forwards a request with `Expect: 100-continue` and leaves the decision to the pod, as nginx does: the
   * pod's 100 Continue is relayed so the client sends its body, or the pod's final answer goes out without it. Node
   * writes such a request's line as soon as it is made, before any body source could set its path, so it is made here
   * with the client's own request-target rather than through http-proxy.
   */
  private expecting(req: http.IncomingMessage, res: http.ServerResponse, up: Upstream): void {
    const ctx = contexts.get(req)!;
    const pod = http.request({ host: up.host, port: up.port, method: req.method, path: req.url, headers: req.headers, agent: up.internal ? this.internalAgent : this.podAgent, setHost: false });
    ctx.proxyReq = pod;
    pod.once('socket', () => this.onProxyReq(pod, req));
    pod.on('continue', () => {
      if (!res.headersSent && !res.destroyed) res.writeContinue();
    });
    pod.once('response', (proxyRes: http.IncomingMessage) => this.onProxyRes(proxyRes, req, res));
    pod.on('error', (err: NodeJS.ErrnoException) => this.onError(err, req, res));
    req.pipe(pod);
  }

  /**
   * cancel is called when the client's response closes. Unless the answer went out in full, the request to the pod is
   * cancelled too: http-proxy does not do this itself (http-proxy#1586).
   */
  cancel(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = contexts.get(req);
    if (!ctx) return;
    if (!res.writableFinished) ctx.proxyReq?.destroy();
  }

  /** ws forwards a WebSocket upgrade. On failure the raw socket is closed: a socket has no writeHead. */
  ws(req: http.IncomingMessage, socket: Duplex, head: Buffer, up: Upstream, hooks: ProxyHooks): void {
    contexts.set(req, { hooks, proxyReq: undefined, proxyRes: undefined, timedOut: false });
    forHttpProxy(req);
    this.joinedFor(up).ws(req, socket, head);
  }

  close(): void {
    this.internalAgent.destroy();
    this.podAgent.destroy();
    for (const set of this.proxies.values()) {
      set.streamed.close();
      set.bodiless.close();
      set.joined?.close();
    }
    this.proxies.clear();
  }
}

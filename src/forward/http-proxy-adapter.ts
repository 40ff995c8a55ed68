// http-proxy-adapter.ts — the one module that touches http-proxy. It closes http-proxy's known traps (see docs/ARCHITECTURE.md).
import http from 'node:http';
import net from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Conntrack } from './flow.js';
import type { Upstream } from './route.js';

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
  /** proxyReq lets a client abort reach the request to the pod. */
  proxyReq: http.ClientRequest | undefined;
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

/**
 * dropRequestHopByHop: the client's `Connection: close` ends its own connection to portlab, not portlab's pooled
 * connection to the pod, and the headers it names stay here. Most requests carry none of these, and pay a lookup each.
 */
function dropRequestHopByHop(headers: http.IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined && connection !== 'keep-alive') {
    for (const name of connectionNames(connection) ?? []) {
      if (name !== 'close' && name !== 'keep-alive' && name !== 'host') delete headers[name];
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
type Relayed = http.IncomingMessage & { [CLIENT]: http.ServerResponse };

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
  if (!this.complete) this[CLIENT].destroy();
}

/**
 * relayResponse sends the pod's answer on: status, end-to-end headers in one writeHead, then the body with
 * backpressure. It stands in for http-proxy's outgoing passes and pipe() (its documented selfHandleResponse option),
 * which set each header with its own call and attach eight stream listeners to every response.
 */
function relayResponse(proxyRes: http.IncomingMessage, res: http.ServerResponse): void {
  const relayed = proxyRes as Relayed;
  relayed[CLIENT] = res;
  proxyRes.on('close', onPodClose);
  if (res.headersSent || res.destroyed) {
    proxyRes.resume();
    return;
  }
  res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, endToEndHeaders(proxyRes));
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
  constructor() {
    // The agent's own options are copied on every request too, so only keepAlive goes there; the pool's limits are
    // its documented properties. keepAliveMsecs stays at Node's 1000.
    super({ keepAlive: true });
    this.maxSockets = 512;
    this.maxFreeSockets = 256;
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
function keepAliveAgent(conntrack: Conntrack | undefined): http.Agent {
  // No agent `timeout`: it makes Node arm and re-arm a socket timer and listener on every request. Idle pooled sockets
  // end when the pod's own keep-alive timeout closes them, and at most maxFreeSockets wait per pod.
  const agent = new PoolAgent();
  const create = (options: net.NetConnectOpts): net.Socket => {
    const socket = net.createConnection(options);
    socket.setNoDelay(true);
    if (conntrack) conntrack.track(socket, null);
    return socket;
  };
  (agent as unknown as { createConnection: typeof create }).createConnection = create;
  return agent;
}

/** UpstreamProxies are the http-proxy servers for one upstream address (see ProxyAdapter.proxies). */
interface UpstreamProxies {
  streamed: httpProxy;
  bodiless: httpProxy;
  joined: httpProxy | undefined;
}

/** ProxyAdapter forwards requests and upgrades to an address:port, and always answers or closes the client. */
export class ProxyAdapter {
  private readonly internalAgent: http.Agent;
  private readonly podAgent: http.Agent;
  /**
   * http-proxy servers per upstream address, made on first use: target, agent and body source are set once, so no
   * per-request options object is merged and parsed (http-proxy's per-call options cost as much as the rest).
   * `bodiless` and `streamed` carry requests without and with a body; their body sources set the pod's request-target,
   * so http-proxy is told not to build one (url.parse and its path join cost more than the rest of its set-up).
   * `joined` keeps http-proxy's own path for the two cases whose request line is written before a body source runs:
   * WebSocket upgrades and `Expect: 100-continue`.
   */
  private readonly proxies = new Map<string, UpstreamProxies>();
  constructor(private readonly options: ProxyAdapterOptions) {
    this.internalAgent = keepAliveAgent(options.conntrack);
    this.podAgent = keepAliveAgent(undefined);
  }

  /** proxiesFor is keyed by the upstream's address, a string made once per endpoint, so its hash is already known. */
  private proxiesFor(up: Upstream): UpstreamProxies {
    let set = this.proxies.get(up.address);
    if (!set) {
      set = { streamed: this.createProxy(up, STREAMED_BODY, false), bodiless: this.createProxy(up, EMPTY_BODY, false), joined: undefined };
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
    // Without an 'error' listener http-proxy takes the process down. Every error ends in the request's onFailure.
    proxy.on('error', (err: NodeJS.ErrnoException, req, resOrSocket) => this.onError(err, req, resOrSocket));
    return proxy;
  }

  /** onProxyReq runs once the pod's request has its socket: the upstream timeout and the connect timing start here. */
  private onProxyReq(proxyReq: http.ClientRequest, req: http.IncomingMessage): void {
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
  }

  private onProxyRes(proxyRes: http.IncomingMessage, req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = contexts.get(req);
    ctx?.hooks.onResponse?.(proxyRes.statusCode ?? 0);
    relayResponse(proxyRes, res);
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
  web(req: http.IncomingMessage, res: http.ServerResponse, up: Upstream, hooks: ProxyHooks): void {
    contexts.set(req, { hooks, proxyReq: undefined, timedOut: false });
    dropRequestHopByHop(req.headers);
    const headers = req.headers;
    // Node writes the request line of a request with an Expect header when it is created, before any body source runs.
    const expects = headers.expect !== undefined;
    const proxy = expects ? this.joinedFor(up) : hasBody(headers) ? this.proxiesFor(up).streamed : this.proxiesFor(up).bodiless;
    building = req;
    try {
      proxy.web(req, res);
    } finally {
      building = undefined;
    }
    // http-proxy emits no 'proxyReq' for a request with Expect (its headers are already written), so the upstream
    // timeout and the connect timing are hooked to the pod's request that the body source was given.
    const pod = expects ? contexts.get(req)?.proxyReq : undefined;
    if (pod) pod.once('socket', () => this.onProxyReq(pod, req));
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
    contexts.set(req, { hooks, proxyReq: undefined, timedOut: false });
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

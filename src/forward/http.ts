// http.ts — the L7 forwarder: one endpoint choice per request, X-Forwarded-* with the original client, 502/503/504 answers.
import http from 'node:http';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { admit, type Admission } from '../net/budget.js';
import { closeServer, listenOn, trackSockets } from '../net/sockets.js';
import { choose, type Choices } from './choose.js';
import { chosen, newFlow, newHop, plainAddress, type Conntrack, type Flow, type HopTiming } from './flow.js';
import { dropRequestHopByHop, type ProxyAdapter, type ProxyFailure, type ProxyHooks } from './http-proxy-adapter.js';
import { DROP, type Forwarder, type ListenerObserver, type Route } from './route.js';

/** FLOW_HEADER carries a flow id from portlab's node hop to its service hop. It is stripped before any pod sees it. */
export const FLOW_HEADER = 'x-portlab-flow';

export interface HttpForwarderOptions {
  /** headersTimeoutMs: a client that has not sent its headers by then gets 408 (slowloris). */
  headersTimeoutMs: number;
  /** bodyTimeoutMs: a client that has not sent its whole request by then gets 408 (a body dripped to hold a connection). */
  bodyTimeoutMs: number;
  admission?: Admission;
}

// Where the socket's byte counters stood when its previous request was counted.
const COUNTED = Symbol('portlab.bytesCounted');
type Counted = net.Socket & { [COUNTED]?: { read: number; written: number } };

/**
 * countBytes sets the flow's bytes to what the connection carried since its previous request finished, and moves the
 * mark. A request's headers are read before its handler runs, so a mark taken in the handler would count a GET as 0
 * bytes in. Nothing is counted per chunk: the socket's own counters are read once per request.
 */
function countBytes(socket: net.Socket, flow: Flow): void {
  const s = socket as Counted;
  const mark = (s[COUNTED] ??= { read: 0, written: 0 });
  flow.bytesIn = s.bytesRead - mark.read;
  flow.bytesOut = s.bytesWritten - mark.written;
  mark.read = s.bytesRead;
  mark.written = s.bytesWritten;
}

// What Conntrack said of a connection's peer, kept on the socket.
const PEER = Symbol('portlab.peer');
type Peered = net.Socket & { [PEER]?: Flow | null | undefined };

// A connection handed back to Node's HTTP parser after a declined upgrade carries the protocol it asked for, until its
// request is logged with a note. It was admitted and counted when it was accepted.
const REPARSED = Symbol('portlab.reparsed');
type Reparsed = net.Socket & { [REPARSED]?: string };

/** DECLINED_HEADERS end with a declined upgrade: the upgrade itself, and HTTP/2's settings for it (RFC 7540 3.2). */
const DECLINED_HEADERS = new Set(['upgrade', 'http2-settings']);

/** isWebSocket: the Upgrade header names WebSocket, the one upgrade the L7 proxy relays. */
const isWebSocket = (upgrade: string | undefined) => upgrade !== undefined && upgrade.split(',').some((p) => p.trim().toLowerCase() === 'websocket');

/** HTTP2_HINT is what an HTTP/2 client on an L7 port is told, in its GOAWAY and in the log. */
const HTTP2_HINT = 'this Service port is L7, which speaks HTTP/1.1; for HTTP/2 or gRPC name the port grpc or h2c, or set appProtocol: kubernetes.io/h2c, and portlab serves it at L4';

/**
 * goAway is what an HTTP/1.1-only server may answer to the HTTP/2 preface (RFC 9113 3.4, 6.8): its own empty SETTINGS,
 * then GOAWAY with last stream 0, HTTP_1_1_REQUIRED, and the hint as debug data, which HTTP/2 clients show.
 */
function goAway(debug: string): Buffer {
  const text = Buffer.from(debug);
  const frame = Buffer.alloc(9 + 9 + 8 + text.length);
  frame.writeUIntBE(0, 0, 3); // SETTINGS: length 0
  frame[3] = 0x4;
  frame.writeUIntBE(8 + text.length, 9, 3); // GOAWAY
  frame[12] = 0x7;
  frame.writeUInt32BE(0, 18); // last stream id
  frame.writeUInt32BE(0xd, 22); // HTTP_1_1_REQUIRED
  text.copy(frame, 26);
  return frame;
}

function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

/** HttpForwarder is one L7 listener. Node's HTTP parser stays strict: malformed requests are answered here, never forwarded. */
export class HttpForwarder implements Forwarder {
  readonly server: http.Server;
  private readonly sockets: Set<net.Socket>;

  constructor(
    private route: Route,
    private readonly choices: Choices,
    private readonly conntrack: Conntrack,
    private readonly proxy: ProxyAdapter,
    private readonly observer: ListenerObserver,
    options: HttpForwarderOptions,
  ) {
    this.server = http.createServer(
      { headersTimeout: options.headersTimeoutMs, requestTimeout: options.bodyTimeoutMs, keepAliveTimeout: 5000, connectionsCheckingInterval: Math.min(30_000, Math.max(100, options.headersTimeoutMs / 4)), noDelay: true },
      (req, res) => this.onRequest(req, res),
    );
    this.sockets = trackSockets(this.server);
    const admission = options.admission ?? {};
    this.server.on('connection', (socket: net.Socket) => {
      if ((socket as Reparsed)[REPARSED] !== undefined) return; // back from a declined upgrade: admitted already
      // trackSockets has counted this one already.
      const admitted = admit(admission, this.sockets.size - 1);
      if (admitted !== 'ok') {
        if (admitted === 'max_connections') this.observer.dropped();
        else this.observer.overBudget();
        socket.resetAndDestroy();
        return;
      }
      if (admission.budget) socket.once('close', () => admission.budget!.give());
      this.observer.opened();
      socket.once('close', () => {
        const hop = { layer: this.route.layer, listen: this.route.listen, rxBytes: socket.bytesRead, txBytes: socket.bytesWritten };
        this.observer.closed(connectionFlow(this.route, socket), hop, false);
      });
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    // Expect: 100-continue is the pod's call: Node would answer 100 itself unless someone listens for it.
    this.server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    // A Service port is not a forward proxy: CONNECT gets a status, not a silent close.
    this.server.on('connect', (req: http.IncomingMessage) => this.refuse(req.socket, 405, 'CONNECT is not forwarded', 'Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n'));
  }

  /** refuse answers a request that goes no further with a status line, counts and logs it, and closes the connection. */
  private refuse(socket: net.Socket, status: number, why: string, headers = ''): void {
    if (socket.writable && socket.bytesWritten === 0) socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${headers}Connection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
    const flow = this.newFlow(socket);
    flow.status = status;
    flow.error = why;
    this.answeredHere(flow);
  }

  /** onClientError answers as Node's default does (400, 431, 408) and counts it; nothing reaches a pod. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const s = socket as net.Socket;
    if (err.code === 'HPE_PAUSED_H2_UPGRADE') return this.refuseHttp2(s);
    if (err.code !== 'ECONNRESET' && s.writable && s.bytesWritten === 0) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      this.refuse(s, status, err.code ?? 'bad request');
    }
    s.destroy();
  }

  /** refuseHttp2 answers a client that opened with the HTTP/2 preface in HTTP/2, which it can read, and logs what it sent. */
  private refuseHttp2(socket: net.Socket): void {
    const frames = goAway(HTTP2_HINT);
    const flow = this.newFlow(socket);
    flow.method = 'PRI';
    flow.path = '*';
    flow.error = `HTTP/2 preface on an HTTP/1.1 port: answered GOAWAY HTTP_1_1_REQUIRED (${HTTP2_HINT})`;
    flow.bytesIn = socket.bytesRead;
    flow.bytesOut = frames.length;
    if (socket.writable && socket.bytesWritten === 0) socket.end(frames);
    else socket.destroy();
    this.answeredHere(flow);
  }

  /** answeredHere logs and counts a request this hop answered itself: the flow's route is this hop alone. */
  private answeredHere(flow: Flow): void {
    const hop = newHop(this.route.layer, this.route.listen);
    hop.durationMs = 0;
    flow.hops.push(hop);
    this.observer.request?.(flow, hop, true);
  }

  /**
   * declineUpgrade serves a request that asks to upgrade to anything but WebSocket (h2c, from Java's HttpClient or
   * `curl --http2`) as the plain HTTP/1.1 request it also is, as nginx and Envoy do. Node hands every upgrade request
   * to the 'upgrade' event with the parser detached, so the request goes back through a fresh parser, as written but
   * without the upgrade and its Connection tokens, and from there the ordinary way.
   */
  private declineUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    // A response still going out on this connection (to a request pipelined before this one) belongs to the parser
    // Node just let go: the request goes back only once the connection is idle, so the two never overlap.
    const pending = (socket as net.Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (pending) {
      pending.once('close', () => setImmediate(() => socket.destroyed || this.declineUpgrade(req, socket, head)));
      return;
    }
    const raw = req.rawHeaders;
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (DECLINED_HEADERS.has(name)) continue;
      let value = raw[i + 1]!;
      if (name === 'connection') {
        value = value.split(',').map((t) => t.trim()).filter((t) => t !== '' && !DECLINED_HEADERS.has(t.toLowerCase())).join(', ');
        if (value === '') continue;
      }
      text += `${raw[i]}: ${value}\r\n`;
    }
    (socket as Reparsed)[REPARSED] = String(req.headers.upgrade);
    if (head.length > 0) socket.unshift(head);
    socket.unshift(Buffer.from(`${text}\r\n`, 'latin1'));
    this.server.emit('connection', socket);
  }

  /** innerFlow is the node hop's flow when this request comes from portlab's own node hop (by header, over an internal socket). */
  private innerFlow(req: http.IncomingMessage | undefined, socket: net.Socket): Flow | undefined {
    const internal = this.peerOf(socket);
    const id = req?.headers[FLOW_HEADER];
    if (req && id !== undefined) delete req.headers[FLOW_HEADER];
    return internal === null && typeof id === 'string' ? this.conntrack.flowById(Number(id)) : undefined;
  }

  /** newFlow starts the flow of a request from outside: this hop is its first. */
  private newFlow(socket: net.Socket): Flow {
    return newFlow({ servicePort: this.route.servicePort, protocol: 'TCP', mode: 'http', clientAddress: plainAddress(socket.remoteAddress), clientPort: socket.remotePort ?? 0 });
  }

  /** peerOf is what Conntrack knows of the connection's peer, looked up once per connection: a peer never changes. */
  private peerOf(socket: net.Socket): Flow | null | undefined {
    const s = socket as Peered;
    if (!(PEER in s)) s[PEER] = this.conntrack.lookup(socket.remoteAddress, socket.remotePort);
    return s[PEER];
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = this.route;
    const started = performance.now();
    const socket = req.socket;
    const inner = this.innerFlow(req, socket);
    const flow = inner ?? this.newFlow(socket);
    const outer = inner === undefined;
    const hop: HopTiming = newHop(route.layer, route.listen);
    flow.hops.push(hop);
    if (outer) {
      flow.method = req.method;
      flow.path = req.url;
    }
    const declined = (socket as Reparsed)[REPARSED];
    if (declined) {
      flow.note = `Upgrade: ${declined} declined, served as HTTP/1.1`;
      (socket as Reparsed)[REPARSED] = ''; // only its first request asked
    }
    const request = new L7Request(route, this.observer, this.conntrack, this.proxy, req, res, flow, hop, started, outer);
    (res as Tagged)[REQUEST] = request;
    res.on('close', onResponseClose);

    const up = choose(route, flow, this.choices);
    if (up === undefined) {
      flow.error = 'no endpoints';
      flow.status = 503;
      this.observer.rejected(flow, false);
      reply(res, 503, `503 Service Unavailable: no ready endpoints for Service ${route.serviceName} (${route.servicePort})\n`);
      return;
    }
    if (up === DROP) {
      flow.error = 'dropped (externalTrafficPolicy: Local, no local endpoint)';
      this.observer.droppedLocal();
      return; // say nothing, as a DROP rule does; the socket's own timeouts end it
    }
    chosen(flow, hop, up);
    dropRequestHopByHop(req.headers);
    setForwardedHeaders(req, flow, outer, socket);
    if (up.internal) {
      this.conntrack.publish(flow);
      req.headers[FLOW_HEADER] = String(flow.id);
    }
    this.proxy.web(req, res, up, request);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!isWebSocket(req.headers.upgrade)) return this.declineUpgrade(req, socket as net.Socket, head);
    socket.on('error', () => {});
    const route = this.route;
    const inner = this.innerFlow(req, socket as net.Socket);
    const flow = inner ?? this.newFlow(socket as net.Socket);
    const outer = inner === undefined;
    const up = choose(route, flow, this.choices);
    if (up === undefined || up === DROP) {
      if (up === undefined) socket.end(statusLine(503));
      return;
    }
    setForwardedHeaders(req, flow, outer, socket as net.Socket);
    if (up.internal) {
      this.conntrack.publish(flow);
      req.headers[FLOW_HEADER] = String(flow.id);
      socket.once('close', () => this.conntrack.unpublish(flow));
    }
    this.proxy.ws(req, socket, head, up, {
      onFailure: (failure) => {
        flow.error = `upstream ${up.address}: ${failure.code}`;
        this.observer.connectFailed(failure.code);
      },
    });
  }

  setRoute(route: Route): void {
    this.route = route;
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  async close(drainMs: number): Promise<void> {
    this.server.closeIdleConnections();
    await closeServer(this.server, this.sockets, drainMs);
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  get activeConnections(): number {
    return this.sockets.size;
  }
}

// Each response carries its request's state, so one shared 'close' listener serves every request.
const REQUEST = Symbol('portlab.request');
type Tagged = http.ServerResponse & { [REQUEST]?: L7Request };

/** onResponseClose is every response's one 'close' listener: it records the request, and cancels the pod's if unfinished. */
function onResponseClose(this: http.ServerResponse): void {
  (this as Tagged)[REQUEST]?.closed();
}

/** L7Request is one request at one hop. Its methods are the adapter's hooks, so a request makes no closures. */
class L7Request implements ProxyHooks {
  constructor(
    private readonly route: Route,
    private readonly observer: ListenerObserver,
    private readonly conntrack: Conntrack,
    private readonly proxy: ProxyAdapter,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly flow: Flow,
    private readonly hop: HopTiming,
    private readonly started: number,
    private readonly outer: boolean,
  ) {
    this.socket = req.socket;
  }

  /** socket is the connection the request came on, read while the request still has it. */
  private readonly socket: net.Socket;

  onUpstreamSocket(at: number): void {
    this.hop.connectMs = at - this.started;
  }

  onResponse(status: number): void {
    if (this.outer) this.flow.status = status;
  }

  onFailure(failure: ProxyFailure): void {
    const { flow, hop, res, route } = this;
    flow.error = `upstream ${hop.upstream}: ${failure.code}`;
    if (failure.status === 502) this.observer.connectFailed(failure.code);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    flow.status = failure.status;
    const why = failure.status === 504 ? 'did not answer in time' : `failed (${failure.code})`;
    reply(res, failure.status, `${failure.status} ${http.STATUS_CODES[failure.status]}: ${route.serviceName} endpoint ${hop.upstream} ${why}\n`);
  }

  onCutShort(): void {
    this.flow.error ??= `upstream ${this.hop.upstream}: the response ended before its body did`;
  }

  closed(): void {
    const { flow, hop, res } = this;
    this.proxy.cancel(this.req, res);
    hop.durationMs = performance.now() - this.started;
    if (this.outer) {
      countBytes(this.socket, flow);
      // A client that closed (or half-closed: a FIN reads the same) before the whole answer went out did not get it,
      // whatever the pod said: logged as nginx logs it, 499.
      if (!res.writableFinished && flow.error === undefined) {
        flow.error = 'client closed the connection before the whole answer was sent';
        flow.status = 499;
      }
      flow.status ??= res.statusCode;
      this.conntrack.unpublish(flow);
    }
    this.observer.request?.(flow, hop, this.outer);
  }
}

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
}

/**
 * setForwardedHeaders writes X-Forwarded-For/Port/Proto/Host. The first hop appends the client it saw; portlab's own
 * inner hop keeps them as they are, so the pod sees the original client and not portlab's node hop.
 */
function setForwardedHeaders(req: http.IncomingMessage, flow: Flow, outer: boolean, socket: net.Socket): void {
  if (!outer) return;
  const prior = req.headers['x-forwarded-for'];
  req.headers['x-forwarded-for'] = prior ? `${prior}, ${flow.clientAddress}` : flow.clientAddress;
  req.headers['x-forwarded-port'] = String(socket.localPort ?? '');
  req.headers['x-forwarded-proto'] = 'http';
  if (req.headers.host) req.headers['x-forwarded-host'] = req.headers.host;
}

/** connectionFlow is a minimal flow for connection-level counters of an L7 listener (requests are logged on their own). */
function connectionFlow(route: Route, socket: net.Socket): Flow {
  return newFlow({ servicePort: route.servicePort, protocol: 'TCP', mode: 'http', clientAddress: plainAddress(socket.remoteAddress), clientPort: socket.remotePort ?? 0 });
}

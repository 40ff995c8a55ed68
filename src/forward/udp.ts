// udp.ts — the UDP forwarder: one session per client address:port to one endpoint, ended after an idle timeout.
import dgram from 'node:dgram';
import net from 'node:net';
import type { ConnectionBudget } from '../net/budget.js';
import { performance } from 'node:perf_hooks';
import { bindUdp, ignore } from '../net/sockets.js';
import { choose, type Choices } from './choose.js';
import { chosen, newFlow, newHop, type Conntrack, type Flow, type HopTiming } from './flow.js';
import { DROP, type Forwarder, type ListenerObserver, type Route, type Upstream } from './route.js';

interface Session {
  key: string;
  socket: dgram.Socket;
  flow: Flow;
  hop: HopTiming;
  outer: boolean;
  timer: NodeJS.Timeout;
  started: number;
  /** ready resolves once the session socket is bound and connected; false when that failed. */
  ready: Promise<boolean>;
  /** tracked is the session socket's own address:port while Conntrack knows it. */
  tracked?: string;
}

/** UdpForwarder is one UDP listener. Sessions are portlab's conntrack entries for UDP. */
export class UdpForwarder implements Forwarder {
  /** socket is made in listen(), where the address says its family: an IPv6 nodePort ([::1]) needs udp6. */
  private socket?: dgram.Socket;
  private readonly sessions = new Map<string, Session>();
  /** host is the listener's own address; session sockets bind there, so the next hop sees this layer's address. */
  private host = '127.0.0.1';

  constructor(
    private route: Route,
    private readonly choices: Choices,
    private readonly conntrack: Conntrack,
    private readonly observer: ListenerObserver,
    private readonly idleTimeoutMs: number,
    private readonly budget?: ConnectionBudget,
  ) {}

  setRoute(route: Route): void {
    this.route = route;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    const s = this.sessions.get(key) ?? this.open(key, rinfo);
    if (!s) return;
    s.hop.rxBytes = (s.hop.rxBytes ?? 0) + msg.length;
    if (s.outer) s.flow.bytesIn += msg.length;
    s.timer.refresh();
    void s.ready.then((ok) => {
      if (ok) s.socket.send(msg);
    });
  }

  private open(key: string, rinfo: dgram.RemoteInfo): Session | undefined {
    const route = this.route;
    const inbound = this.conntrack.lookupUdp(rinfo.address, rinfo.port);
    const outer = !inbound;
    const flow = inbound ?? newFlow({ servicePort: route.servicePort, protocol: 'UDP', mode: 'udp', clientAddress: rinfo.address, clientPort: rinfo.port });
    const hop: HopTiming = newHop(route.layer, route.listen);
    flow.hops.push(hop);
    const up = choose(route, flow, this.choices);
    if (up === undefined || up === DROP) {
      flow.error = up === DROP ? 'dropped (externalTrafficPolicy: Local, no local endpoint)' : 'no endpoints';
      if (up === DROP) this.observer.droppedLocal();
      this.observer.rejected(flow, outer);
      return undefined; // UDP has no reset to send; kube-proxy answers ICMP unreachable, which Node cannot send
    }
    // A session holds a socket: past the descriptor budget the datagram is dropped and counted.
    if (this.budget && !this.budget.take()) {
      flow.error = 'refused: the process is at its descriptor budget';
      this.observer.overBudget();
      return undefined;
    }
    this.observer.opened();
    chosen(flow, hop, up);
    const socket = dgram.createSocket({ type: 'udp4' });
    const started = performance.now();
    const session: Session = { key, socket, flow, hop, outer, started, timer: setTimeout(() => this.end(key), this.idleTimeoutMs), ready: Promise.resolve(false) };
    session.timer.unref();
    session.ready = this.connect(session, up);
    socket.on('message', (reply) => {
      hop.txBytes = (hop.txBytes ?? 0) + reply.length;
      if (outer) flow.bytesOut += reply.length;
      session.timer.refresh();
      this.socket!.send(reply, rinfo.port, rinfo.address); // a session exists only once the socket has a message
    });
    // A pod that is not there answers ICMP port unreachable, which a connected socket reports as ECONNREFUSED.
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(session, err));
    this.sessions.set(key, session);
    return session;
  }

  /** connect binds the session socket on this layer's address and connects it to the upstream; false if that failed. */
  private connect(session: Session, up: Upstream): Promise<boolean> {
    return new Promise((resolve) => {
      const { socket } = session;
      const failed = (err: Error) => {
        this.fail(session, err as NodeJS.ErrnoException);
        resolve(false);
      };
      socket.once('error', failed);
      socket.bind({ address: this.host, port: 0 }, () => {
        if (up.internal) {
          session.tracked = `${this.host}:${socket.address().port}`;
          this.conntrack.trackUdp(session.tracked, session.flow);
        }
        socket.connect(up.port, up.host, () => {
          socket.removeListener('error', failed);
          resolve(true);
        });
      });
    });
  }

  /** fail reports a session whose pod side failed, and ends it: the next datagram from the client opens a new one. */
  private fail(session: Session, err: NodeJS.ErrnoException): void {
    if (this.sessions.get(session.key) !== session) return;
    const code = err.code ?? 'UNKNOWN';
    if (!session.flow.error) session.flow.error = `upstream ${session.hop.upstream}: ${code}`;
    this.observer.connectFailed(code);
    this.end(session.key);
  }

  private end(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    this.sessions.delete(key);
    this.budget?.give();
    clearTimeout(s.timer);
    if (s.tracked) this.conntrack.untrackUdp(s.tracked, s.flow);
    s.hop.durationMs = performance.now() - s.started;
    s.socket.removeAllListeners('error');
    s.socket.on('error', ignore);
    try {
      s.socket.close();
    } catch {
      // already closed
    }
    this.observer.closed(s.flow, s.hop, s.outer);
  }

  listen(host: string, port: number): Promise<void> {
    // Sessions bind to this listener's address, so the next hop sees this layer; from an IPv6 listener, to IPv4 loopback.
    const v6 = net.isIPv6(host);
    this.host = v6 ? '127.0.0.1' : host;
    const socket = (this.socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' }));
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    return bindUdp(socket, host, port);
  }

  async close(_drainMs: number): Promise<void> {
    this.destroyAll();
    const socket = this.socket;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  destroyAll(): void {
    for (const key of [...this.sessions.keys()]) this.end(key);
  }
}

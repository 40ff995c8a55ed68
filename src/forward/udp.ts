// udp.ts — the UDP forwarder: one session per client address:port to one endpoint, ended after an idle timeout.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { chosen, newFlow, newHop, type Conntrack, type Flow, type HopTiming } from './flow.js';
import { DROP, type Route, type Upstream } from './route.js';

interface Session {
  socket: dgram.Socket;
  flow: Flow;
  hop: HopTiming;
  outer: boolean;
  timer: NodeJS.Timeout;
  started: number;
  ready: Promise<void>;
}

/** UdpForwarder is one UDP listener. Sessions are portlab's conntrack entries for UDP. */
export class UdpForwarder {
  readonly socket: dgram.Socket;
  private readonly sessions = new Map<string, Session>();
  /** host is the listener's own address; session sockets bind there, so the next hop sees this layer's address. */
  private host = '127.0.0.1';

  constructor(
    public route: Route,
    private readonly conntrack: Conntrack,
    private readonly idleTimeoutMs: number,
  ) {
    this.socket = dgram.createSocket({ type: 'udp4' });
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}:${rinfo.port}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = this.open(rinfo);
      if (!session) return;
    }
    const s = session;
    s.hop.rxBytes = (s.hop.rxBytes ?? 0) + msg.length;
    if (s.outer) s.flow.bytesIn += msg.length;
    s.timer.refresh();
    void s.ready.then(() => s.socket.send(msg));
  }

  private open(rinfo: dgram.RemoteInfo): Session | undefined {
    const route = this.route;
    const inbound = this.conntrack.lookupUdp(rinfo.address, rinfo.port);
    const outer = !inbound;
    const flow = inbound ?? newFlow({ servicePort: route.servicePort, protocol: 'UDP', mode: 'udp', clientAddress: rinfo.address, clientPort: rinfo.port });
    const hop: HopTiming = newHop(route.layer, route.listen);
    flow.hops.push(hop);
    const up = route.choose(flow);
    if (up === undefined || up === DROP) {
      flow.error = up === DROP ? 'dropped' : 'no endpoints';
      route.observer.rejected(flow, outer);
      return undefined; // UDP has no reset to send; kube-proxy answers ICMP unreachable, which Node cannot send
    }
    route.observer.opened();
    chosen(flow, hop, up);
    const socket = dgram.createSocket({ type: 'udp4' });
    socket.on('error', () => {});
    const key = `${rinfo.address}:${rinfo.port}`;
    const started = performance.now();
    const session: Session = {
      socket,
      flow,
      hop,
      outer,
      started,
      timer: setTimeout(() => this.end(key), this.idleTimeoutMs),
      ready: this.connect(socket, up, flow),
    };
    session.timer.unref();
    socket.on('message', (reply) => {
      hop.txBytes = (hop.txBytes ?? 0) + reply.length;
      if (outer) flow.bytesOut += reply.length;
      session.timer.refresh();
      this.socket.send(reply, rinfo.port, rinfo.address);
    });
    this.sessions.set(key, session);
    return session;
  }

  private connect(socket: dgram.Socket, up: Upstream, flow: Flow): Promise<void> {
    return new Promise((resolve) => {
      socket.bind({ address: this.host, port: 0 }, () => {
        if (up.internal) this.conntrack.trackUdp(socket.address().port, flow);
        socket.connect(up.port, up.host, () => resolve());
      });
    });
  }

  private end(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    this.sessions.delete(key);
    clearTimeout(s.timer);
    if (s.hop.upstream) this.conntrack.untrackUdp(s.socket);
    s.hop.durationMs = performance.now() - s.started;
    s.socket.close();
    this.route.observer.closed(s.flow, s.hop, s.outer);
  }

  listen(host: string, port: number): Promise<void> {
    this.host = host;
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: host, port, exclusive: true }, () => {
        this.socket.removeListener('error', reject);
        this.socket.on('error', () => {});
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const key of [...this.sessions.keys()]) this.end(key);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  destroyAll(): void {
    for (const key of [...this.sessions.keys()]) this.end(key);
  }
}

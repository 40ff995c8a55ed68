// tcp.ts — the L4 forwarder: byte for byte, half-close, resets passed through, backpressure by pipe, noDelay both ways.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { admit, type Admission } from '../net/budget.js';
import { closeServer, ignore, listenOn } from '../net/sockets.js';
import { choose, type Choices } from './choose.js';
import { chosen, newFlow, newHop, plainAddress, type Conntrack, type Flow, type HopTiming } from './flow.js';
import { DROP, type Forwarder, type ListenerObserver, type Route } from './route.js';

// How long a DROPped connection is held before portlab lets go; the client has long timed out by then.
const DROP_HOLD_MS = 120_000;

const EMPTY = Buffer.alloc(0);

// The pod-side socket and the flow of a client connection, kept on the client socket: closing one side closes the
// other, and the log says why.
const PEER = Symbol('portlab.upstream');
const FLOW = Symbol('portlab.flow');
type Paired = net.Socket & { [PEER]?: net.Socket; [FLOW]?: Flow };

/**
 * forwardEnd passes a FIN on, or a reset if the 'end' was really one. libuv reports a reset that follows a partial
 * read as a clean EOF, so a crash would look like success. A zero-byte write tells them apart: after a FIN the peer
 * still accepts writes (half-close), after a reset the write fails with ECONNRESET or EPIPE.
 */
function forwardEnd(from: net.Socket, to: net.Socket): void {
  if (from.destroyed || from.writableEnded) {
    if (!to.destroyed) to.end();
    return;
  }
  from.write(EMPTY, (err) => {
    if (to.destroyed) return;
    if (err) to.resetAndDestroy();
    else to.end();
  });
}

/** TcpForwarder is one L4 listener. sync() swaps its route; open connections keep the upstream they chose. */
export class TcpForwarder implements Forwarder {
  readonly server: net.Server;
  private readonly sockets = new Set<Paired>();

  constructor(
    private route: Route,
    private readonly choices: Choices,
    private readonly conntrack: Conntrack,
    private readonly observer: ListenerObserver,
    private readonly admission: Admission = {},
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
  }

  setRoute(route: Route): void {
    this.route = route;
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  private onConnection(client: Paired): void {
    const route = this.route;
    const observer = this.observer;
    const started = performance.now();
    client.on('error', ignore); // replaced below; a socket must never be without an error listener
    const admitted = admit(this.admission, this.sockets.size);
    if (admitted !== 'ok') {
      if (admitted === 'max_connections') observer.dropped();
      else observer.overBudget();
      client.resetAndDestroy();
      return;
    }
    if (this.admission.budget) client.once('close', () => this.admission.budget!.give());
    this.sockets.add(client);
    const inbound = this.conntrack.lookup(client.remoteAddress, client.remotePort);
    const outer = !inbound;
    const flow: Flow =
      inbound ??
      newFlow({ servicePort: route.servicePort, protocol: 'TCP', mode: 'tcp', clientAddress: plainAddress(client.remoteAddress), clientPort: client.remotePort ?? 0 });
    const hop: HopTiming = newHop(route.layer, route.listen);
    flow.hops.push(hop);
    client[FLOW] = flow;

    const up = choose(route, flow, this.choices);
    if (up === undefined) {
      // No ready endpoint: reset at once, as kube-proxy's REJECT does, never an empty success.
      flow.error = 'no endpoints';
      observer.rejected(flow, outer);
      client.once('close', () => this.sockets.delete(client));
      client.resetAndDestroy();
      return;
    }
    observer.opened();
    if (up === DROP) {
      flow.error = 'dropped (externalTrafficPolicy: Local, no local endpoint)';
      observer.droppedLocal();
      client.setTimeout(DROP_HOLD_MS, () => client.destroy());
      client.on('data', ignore);
      client.once('close', () => {
        this.sockets.delete(client);
        hop.durationMs = performance.now() - started;
        observer.closed(flow, hop, outer);
      });
      return;
    }
    chosen(flow, hop, up);

    const upstream = net.connect({ host: up.host, port: up.port, allowHalfOpen: true, noDelay: true });
    client[PEER] = upstream;
    if (up.internal) this.conntrack.track(upstream, flow);
    let connected = false;

    upstream.once('connect', () => {
      connected = true;
      hop.connectMs = performance.now() - started;
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        flow.error = `upstream ${hop.upstream}: ${err.code ?? err.message}`;
        observer.connectFailed(err.code ?? 'UNKNOWN');
      } else if (!flow.error) flow.error = `upstream ${err.code ?? err.message}`;
      // A refused or reset upstream becomes a reset for the client, never a clean FIN that looks like success.
      if (!client.destroyed) client.resetAndDestroy();
    });
    client.removeListener('error', ignore);
    client.on('error', (err: NodeJS.ErrnoException) => {
      if (!flow.error) flow.error = `client ${err.code ?? err.message}`;
      if (!upstream.destroyed) upstream.resetAndDestroy();
    });
    if (route.idleTimeoutMs > 0) {
      client.setTimeout(route.idleTimeoutMs, () => {
        flow.error = 'idle timeout';
        client.destroy();
        upstream.destroy();
      });
    }

    client.pipe(upstream, { end: false });
    upstream.pipe(client, { end: false });
    client.once('end', () => forwardEnd(client, upstream));
    upstream.once('end', () => forwardEnd(upstream, client));

    let open = 2;
    const done = () => {
      if (--open > 0) return;
      this.sockets.delete(client);
      hop.durationMs = performance.now() - started;
      hop.rxBytes = client.bytesRead;
      hop.txBytes = client.bytesWritten;
      if (outer) {
        flow.bytesIn = hop.rxBytes;
        flow.bytesOut = hop.txBytes;
      }
      observer.closed(flow, hop, outer);
    };
    client.once('close', done);
    upstream.once('close', done);
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  async close(drainMs: number): Promise<void> {
    await closeServer(this.server, this.pairs(), drainMs);
  }

  destroyAll(): void {
    for (const s of this.pairs()) s.destroy();
  }

  /**
   * pairs cuts a connection's both sides together, with a reset: a connection cut short must not look like one that
   * ended well (a FIN), and a reset also frees the pod's side at once, where a half-open pod would keep a FIN'd socket.
   */
  private pairs(): { destroy(): void }[] {
    return [...this.sockets].map((client) => ({
      destroy: () => {
        const flow = client[FLOW];
        if (flow && !flow.error && !client.destroyed) flow.error = 'closed by portlab (listener closed)';
        if (!client.destroyed) client.resetAndDestroy();
        const upstream = client[PEER];
        if (upstream && !upstream.destroyed) upstream.resetAndDestroy();
      },
    }));
  }
}

// tcp.ts — the L4 forwarder: byte for byte, half-close, resets passed through, backpressure by pipe, noDelay both ways.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { chosen, newFlow, newHop, plainAddress, type Conntrack, type Flow, type HopTiming } from './flow.js';
import { DROP, type Route } from './route.js';

// How long a DROPped connection is held before portlab lets go; the client has long timed out by then.
const DROP_HOLD_MS = 120_000;

function ignore(): void {}

const EMPTY = Buffer.alloc(0);

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

/** TcpForwarder is one L4 listener. Its route is swapped by sync(); open connections keep the upstream they chose. */
export class TcpForwarder {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    public route: Route,
    private readonly conntrack: Conntrack,
    maxConnections?: number,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
    if (maxConnections) this.server.maxConnections = maxConnections;
    // Node closes a connection over maxConnections at once and emits 'drop' (not in @types/node 20).
    (this.server as NodeJS.EventEmitter).on('drop', () => this.route.observer.dropped());
  }

  get activeConnections(): number {
    return this.sockets.size;
  }

  private onConnection(client: net.Socket): void {
    const route = this.route;
    const started = performance.now();
    client.on('error', ignore); // replaced below; a socket must never be without an error listener
    this.sockets.add(client);
    const inbound = this.conntrack.lookup(client.remoteAddress, client.remotePort);
    const outer = !inbound;
    const flow: Flow =
      inbound ??
      newFlow({ servicePort: route.servicePort, protocol: 'TCP', mode: 'tcp', clientAddress: plainAddress(client.remoteAddress), clientPort: client.remotePort ?? 0 });
    const hop: HopTiming = newHop(route.layer, route.listen);
    flow.hops.push(hop);

    const up = route.choose(flow);
    if (up === undefined) {
      // No ready endpoint: reset at once, as kube-proxy's REJECT does, never an empty success.
      flow.error = 'no endpoints';
      route.observer.rejected(flow, outer);
      client.once('close', () => this.sockets.delete(client));
      client.resetAndDestroy();
      return;
    }
    route.observer.opened();
    if (up === DROP) {
      flow.error = 'dropped (externalTrafficPolicy: Local, no local endpoint)';
      client.setTimeout(DROP_HOLD_MS, () => client.destroy());
      client.on('data', ignore);
      client.once('close', () => {
        this.sockets.delete(client);
        hop.durationMs = performance.now() - started;
        route.observer.closed(flow, hop, outer);
      });
      return;
    }
    chosen(flow, hop, up);

    const upstream = net.connect({ host: up.host, port: up.port, allowHalfOpen: true, noDelay: true });
    if (up.internal) this.conntrack.track(upstream, flow);
    let connected = false;

    upstream.once('connect', () => {
      connected = true;
      hop.connectMs = performance.now() - started;
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        flow.error = `upstream ${hop.upstream}: ${err.code ?? err.message}`;
        route.observer.connectFailed(err.code ?? 'UNKNOWN');
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
      route.observer.closed(flow, hop, outer);
    };
    client.once('close', done);
    upstream.once('close', done);
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  /** close stops accepting; open connections drain until `deadline`, then are destroyed. */
  async close(drainMs: number): Promise<void> {
    await closeServer(this.server, this.sockets, drainMs);
  }

  /** destroyAll resets every open connection (a killed pod's, or at the end of shutdown). */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/** listenOn resolves once the server listens, and rejects with the system error (EADDRINUSE, EACCES, …). */
export function listenOn(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/** closeServer stops accepting now, waits for open sockets up to drainMs, then destroys what is left. */
export function closeServer(server: net.Server, sockets: Set<net.Socket>, drainMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      for (const s of sockets) s.destroy();
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      for (const s of sockets) s.destroy();
    }, drainMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    if (drainMs <= 0) for (const s of sockets) s.destroy();
  });
}

// healthcheck.ts — healthCheckNodePort for LoadBalancer Services with externalTrafficPolicy: Local, as kube-proxy serves it.
import http from 'node:http';
import type net from 'node:net';
import type { Forwarder, HealthRoute } from '../forward/route.js';
import { closeServer, listenOn, trackSockets } from '../net/sockets.js';

/** HealthCheckServer answers 200 when its node has a local endpoint and 503 when not, so a cloud LB skips that node. */
export class HealthCheckServer implements Forwarder<HealthRoute> {
  readonly server: http.Server;
  private readonly sockets: Set<net.Socket>;

  constructor(private route: HealthRoute) {
    this.server = http.createServer((_req, res) => {
      const { namespace, name, localEndpoints } = this.route;
      const body = JSON.stringify({ service: { namespace, name }, localEndpoints, serviceProxyHealthy: true });
      res
        .writeHead(localEndpoints > 0 ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff', 'x-load-balancing-endpoint-weight': String(localEndpoints) })
        .end(body);
    });
    this.sockets = trackSockets(this.server);
  }

  setRoute(route: HealthRoute): void {
    this.route = route;
  }

  listen(host: string, port: number): Promise<void> {
    return listenOn(this.server, host, port);
  }

  close(drainMs: number): Promise<void> {
    return closeServer(this.server, this.sockets, drainMs);
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}

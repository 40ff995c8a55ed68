// healthcheck.ts — healthCheckNodePort for LoadBalancer Services with externalTrafficPolicy: Local, as kube-proxy serves it.
import http from 'node:http';
import type net from 'node:net';
import type { ServicePortBalancer } from '../forward/balancer.js';
import { closeServer, listenOn } from '../forward/tcp.js';

/** HealthCheckServer answers 200 when its node has a local endpoint and 503 when not, so a cloud LB skips that node. */
export class HealthCheckServer {
  readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly namespace: string,
    private readonly name: string,
    private readonly node: string,
    public balancers: ServicePortBalancer[],
  ) {
    this.server = http.createServer((_req, res) => {
      const local = new Set<string>();
      for (const b of this.balancers) for (const e of b.endpoints) if (e.node === this.node) local.add(`${e.ip}`);
      const body = JSON.stringify({ service: { namespace: this.namespace, name: this.name }, localEndpoints: local.size, serviceProxyHealthy: true });
      res.writeHead(local.size > 0 ? 200 : 503, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff', 'x-load-balancing-endpoint-weight': String(local.size) }).end(body);
    });
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
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

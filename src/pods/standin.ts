// standin.ts — a stand-in pod: HTTP/1.1 on each TCP containerPort that says who answered, UDP echo on each UDP one.
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import type net from 'node:net';
import { servedPort, type PodState } from '../model/state.js';
import { bindUdp, listenOn, trackSockets } from '../net/sockets.js';
import { writeBytes } from '../util/write-bytes.js';

interface PortCounters {
  inFlight: number;
  requests: number;
  aborted: number;
  requestBytes: number;
  responseBytes: number;
  connections: number;
  datagrams: number;
}

// Longer than portlab's upstream agent keeps idle sockets, so the pod never closes a socket the agent is reusing.
const POD_KEEPALIVE_MS = 65_000;
const MAX_DELAY_MS = 600_000;

/** StandinPod runs the listeners of one PodState. */
export class StandinPod {
  private readonly servers: { server: http.Server; sockets: Set<net.Socket>; port: number }[] = [];
  private readonly udp: { socket: dgram.Socket; port: number }[] = [];
  readonly counters = new Map<string, PortCounters>();
  running = false;

  /** portOffset is --port-offset: a containerPort below 1024 is served at containerPort + portOffset. */
  constructor(
    public spec: PodState,
    private readonly portOffset = 0,
  ) {}

  /** start listens on every containerPort; on failure it closes what it opened and rethrows with `.port` set. */
  async start(): Promise<void> {
    try {
      for (const cp of this.spec.ports) await this.openPort(cp);
      this.running = true;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async openPort(cp: PodState['ports'][number]): Promise<void> {
    const key = `${cp.containerPort}/${cp.protocol}`;
    let counters = this.counters.get(key);
    if (!counters) {
      counters = { inFlight: 0, requests: 0, aborted: 0, requestBytes: 0, responseBytes: 0, connections: 0, datagrams: 0 };
      this.counters.set(key, counters);
    }
    if (cp.protocol === 'UDP') await this.startUdp(cp.containerPort, counters);
    else if (cp.protocol === 'TCP') await this.startHttp(cp.containerPort, cp.name, counters);
  }

  /**
   * updatePorts opens and closes only the ports that changed, so a reload that adds a targetPort to a pod leaves
   * the connections on its other ports alone.
   */
  async updatePorts(spec: PodState): Promise<void> {
    const key = (p: { containerPort: number; protocol: string }) => `${p.containerPort}/${p.protocol}`;
    const want = new Set(spec.ports.map(key));
    const have = new Set(this.spec.ports.map(key));
    for (const s of [...this.servers]) {
      if (want.has(`${s.port}/TCP`)) continue;
      this.servers.splice(this.servers.indexOf(s), 1);
      s.server.close();
      for (const sock of s.sockets) sock.destroy();
    }
    for (const u of [...this.udp]) {
      if (want.has(`${u.port}/UDP`)) continue;
      this.udp.splice(this.udp.indexOf(u), 1);
      u.socket.close();
    }
    const added = spec.ports.filter((p) => !have.has(key(p)));
    this.spec = spec;
    for (const cp of added) await this.openPort(cp);
  }

  private async startHttp(port: number, portName: string | undefined, counters: PortCounters): Promise<void> {
    const server = http.createServer({ keepAliveTimeout: POD_KEEPALIVE_MS }, (req, res) => this.answer(req, res, port, portName, counters));
    const sockets = trackSockets(server);
    server.on('connection', () => counters.connections++);
    server.headersTimeout = 60_000;
    server.requestTimeout = 0;
    const served = servedPort(port, this.portOffset);
    await listenOn(server, this.spec.ip, served).catch((err) => {
      (err as { port?: number }).port = served;
      throw err;
    });
    this.servers.push({ server, sockets, port });
  }

  private async startUdp(port: number, counters: PortCounters): Promise<void> {
    const sock = dgram.createSocket({ type: 'udp4' });
    sock.on('message', (msg, rinfo) => {
      counters.datagrams++;
      sock.send(msg, rinfo.port, rinfo.address);
    });
    const served = servedPort(port, this.portOffset);
    await bindUdp(sock, this.spec.ip, served).catch((err) => {
      (err as { port?: number }).port = served;
      throw err;
    });
    this.udp.push({ socket: sock, port });
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, port: number, portName: string | undefined, counters: PortCounters): void {
    const url = new URL(req.url ?? '/', 'http://pod');
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metricsText());
      return;
    }
    let bytes = 0;
    let hash: ReturnType<typeof createHash> | undefined;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      (hash ??= createHash('sha256')).update(chunk);
    });
    req.on('error', () => {});
    counters.inFlight++;
    res.on('close', () => {
      counters.inFlight--;
      if (!res.writableFinished) counters.aborted++;
    });
    req.on('end', () => {
      counters.requests++;
      counters.requestBytes += bytes;
      const status = clampInt(url.searchParams.get('status'), 200, 100, 599);
      const delay = clampInt(url.searchParams.get('delay'), 0, 0, MAX_DELAY_MS);
      const size = url.searchParams.get('size');
      const reply = () => {
        if (res.destroyed) return;
        if (size !== null) {
          const n = clampInt(size, 0, 0, 1 << 30);
          counters.responseBytes += n;
          res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-pod': this.spec.name });
          writeFiller(res, n);
          return;
        }
        const body = JSON.stringify({
          pod: this.spec.name,
          namespace: this.spec.namespace,
          podIP: this.spec.ip,
          node: this.spec.node,
          port,
          portName: portName ?? null,
          method: req.method,
          path: req.url,
          headers: req.headers,
          client: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
          bodyBytes: bytes,
          bodySha256: hash ? hash.digest('hex') : null,
        });
        counters.responseBytes += Buffer.byteLength(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-pod': this.spec.name }).end(body);
      };
      if (delay > 0) {
        const t = setTimeout(reply, delay);
        res.once('close', () => clearTimeout(t));
      } else reply();
    });
  }

  /** metricsText is the pod's own counters in Prometheus text format. */
  metricsText(): string {
    const rows: [string, string, keyof PortCounters][] = [
      ['standin_connections_total', 'TCP connections this stand-in pod accepted.', 'connections'],
      ['standin_http_requests_total', 'HTTP requests this stand-in pod answered.', 'requests'],
      ['standin_http_requests_aborted_total', 'HTTP requests whose client went away before the answer was sent.', 'aborted'],
      ['standin_http_request_bytes_total', 'Request body bytes received.', 'requestBytes'],
      ['standin_http_response_bytes_total', 'Response body bytes sent.', 'responseBytes'],
      ['standin_udp_datagrams_total', 'UDP datagrams echoed.', 'datagrams'],
      ['standin_http_requests_in_flight', 'HTTP requests received and not yet answered.', 'inFlight'],
    ];
    let out = '';
    for (const [name, help, field] of rows) {
      out += `# HELP ${name} ${help}\n# TYPE ${name} ${field === 'inFlight' ? 'gauge' : 'counter'}\n`;
      for (const [key, c] of this.counters) {
        const [port, protocol] = key.split('/');
        out += `${name}{pod="${this.spec.name}",port="${port}",protocol="${protocol}"} ${c[field]}\n`;
      }
    }
    return out;
  }

  /** stop closes the pod gracefully: listeners close and open connections end. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(
      this.servers.map(
        ({ server, sockets }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
            for (const s of sockets) s.destroy();
          }),
      ),
    );
    this.servers.length = 0;
    for (const u of this.udp) u.socket.close();
    this.udp.length = 0;
  }

  /** kill stops the pod as a crash would: every open connection is reset, then the listeners close. */
  async kill(): Promise<void> {
    for (const { sockets } of this.servers) for (const s of sockets) s.resetAndDestroy();
    await this.stop();
  }
}

function clampInt(v: string | null, fallback: number, min: number, max: number): number {
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, Math.floor(n)));
}

const FILLER = Buffer.alloc(64 * 1024, 'x');

/** writeFiller streams n bytes with backpressure, so a large `?size=` never sits in memory. */
function writeFiller(res: http.ServerResponse, n: number): void {
  writeBytes(res, FILLER, n, () => res.end());
}

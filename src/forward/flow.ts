// flow.ts — one client's journey through portlab's hops, and the conntrack table that ties the hops together.
import type net from 'node:net';
import type { Layer, Upstream } from '../model/state.js';

export type { Layer };


/** HopTiming is what one hop cost: time to connect upstream, and how long its connection lived. */
export interface HopTiming {
  layer: Layer;
  listen: string;
  upstream?: string;
  connectMs?: number;
  durationMs?: number;
  /** rxBytes/txBytes are what this hop received from and sent to its client, read once at close. */
  rxBytes?: number;
  txBytes?: number;
}

/**
 * Flow follows one client connection (L4) or request (L7) across portlab's own hops. The first hop creates it; the
 * inner hop finds it through Conntrack and adds what only it knows (the pod), so one log line tells the whole route.
 */
export interface Flow {
  id: number;
  servicePort: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  mode: 'tcp' | 'http' | 'udp';
  clientAddress: string;
  clientPort: number;
  hops: HopTiming[];
  podName?: string;
  pod?: string;
  node?: string;
  bytesIn: number;
  bytesOut: number;
  /** kernel is the kernel mode that translated the flow (seen through conntrack); bytesUnknown: it kept no byte counts. */
  kernel?: 'nftables' | 'iptables';
  bytesUnknown?: boolean;
  /** entryNode is the node whose nodePort the flow came in on; localOnly applies externalTrafficPolicy: Local. */
  entryNode?: string;
  localOnly?: boolean;
  /** clientNode is the node a direct client of a cluster IP is taken to be on (internalTrafficPolicy: Local). */
  clientNode?: string;
  status?: number;
  method?: string;
  path?: string;
  /** note says what portlab did that the client did not ask for, and is not an error (an upgrade it declined). */
  note?: string;
  error?: string;
}

/**
 * chosen records where a hop sends the flow. An endpoint (a stand-in pod or your own process) is the flow's pod; portlab's
 * own inner hop is not, since the service hop picks the endpoint and records it there.
 */
export function chosen(flow: Flow, hop: HopTiming, up: Upstream): void {
  hop.upstream = up.address;
  if (up.internal) return;
  flow.pod = hop.upstream;
  flow.podName = up.podName;
  flow.node = up.node;
}

let nextFlowId = 1;

/**
 * newFlow makes a flow with every field present from the start: one stable object shape keeps the hot path's
 * property accesses monomorphic (fields added later, in varying order, made each request measurably slower).
 */
export function newFlow(init: Pick<Flow, 'servicePort' | 'protocol' | 'mode' | 'clientAddress' | 'clientPort'>): Flow {
  return {
    id: nextFlowId++,
    servicePort: init.servicePort,
    protocol: init.protocol,
    mode: init.mode,
    clientAddress: init.clientAddress,
    clientPort: init.clientPort,
    hops: [],
    podName: undefined,
    pod: undefined,
    node: undefined,
    bytesIn: 0,
    bytesOut: 0,
    entryNode: undefined,
    localOnly: undefined,
    clientNode: undefined,
    status: undefined,
    method: undefined,
    path: undefined,
    error: undefined,
  };
}

/** newHop makes a hop record, every field present from the start for the same reason as newFlow. */
export function newHop(layer: Layer, listen: string): HopTiming {
  return { layer, listen, upstream: undefined, connectMs: undefined, durationMs: undefined, rxBytes: undefined, txBytes: undefined };
}

/**
 * Conntrack maps the local address:port of portlab's own upstream sockets to their flow, as the kernel's conntrack
 * does for NAT. The service hop looks its peer up here to learn the original client of a node → service connection.
 */
export class Conntrack {
  private readonly byLocal = new Map<string, Flow | null>();

  /**
   * track registers socket once the kernel has bound its local port. net.connect() issues connect(2) on the next
   * tick, and the peer's accept can only run in a later poll phase, so a tick queued now sees the port in time.
   */
  track(socket: net.Socket, flow: Flow | null): void {
    process.nextTick(() => {
      const port = socket.localPort;
      if (port === undefined) return;
      const key = `${socket.localAddress}:${port}`;
      this.byLocal.set(key, flow);
      socket.once('close', () => {
        if (this.byLocal.get(key) === flow) this.byLocal.delete(key);
      });
    });
  }

  /**
   * lookup returns the flow of an internal connection, null for an internal keep-alive socket that many flows share
   * (an L7 agent socket, whose flow travels in a request header), and undefined for a connection from outside.
   */
  lookup(address: string | undefined, port: number | undefined): Flow | null | undefined {
    if (address === undefined || port === undefined) return undefined;
    return this.byLocal.get(`${address}:${port}`);
  }

  private readonly inFlight = new Map<number, Flow>();
  private readonly udpByAddress = new Map<string, Flow>();

  /** trackUdp registers a node hop's UDP session socket by its own address:port, the peer the service hop sees. */
  trackUdp(address: string, flow: Flow): void {
    this.udpByAddress.set(address, flow);
  }

  untrackUdp(address: string, flow: Flow): void {
    if (this.udpByAddress.get(address) === flow) this.udpByAddress.delete(address);
  }

  lookupUdp(address: string, port: number): Flow | undefined {
    return this.udpByAddress.get(`${address}:${port}`);
  }

  /** publish makes an L7 flow findable by id: the next hop gets the id in a header over a shared keep-alive socket. */
  publish(flow: Flow): void {
    this.inFlight.set(flow.id, flow);
  }

  unpublish(flow: Flow): void {
    this.inFlight.delete(flow.id);
  }

  flowById(id: number): Flow | undefined {
    return this.inFlight.get(id);
  }
}

/** plainAddress turns ::ffff:127.0.0.1 into 127.0.0.1, so addresses compare and print as users expect. */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

// conntrack.ts — the kernel's own record of the connections it translated, read from `conntrack -E`: each one that
// went to a Service address becomes a flow, logged and counted like a userspace one.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { newFlow, newHop, type Flow } from '../forward/flow.js';
import type { DesiredState } from '../model/state.js';
import type { Observers } from '../observe/observer.js';
import type { ListenerObserver } from '../forward/route.js';
import { run } from './plane.js';

/** Target is what a packet was sent to: a Service port at one layer. */
interface Target {
  servicePort: string;
  layer: 'node' | 'service' | 'loadbalancer';
}

interface Open {
  flow: Flow;
  observer: ListenerObserver;
  startedMs: number;
}

/** ConntrackEvent is one line of `conntrack -E -o timestamp,id`, as far as portlab reads it. */
export interface ConntrackEvent {
  timeMs: number;
  type: 'NEW' | 'UPDATE' | 'DESTROY';
  protocol: 'tcp' | 'udp' | 'sctp';
  state?: string;
  id: string;
  /** original is the client's view: src → dst; reply is the endpoint's: its src is the pod the kernel chose. */
  original: { src: string; dst: string; sport: number; dport: number; bytes?: number };
  reply: { src: string; sport: number; bytes?: number };
}

const LINE = /^\[(\d+)\.(\d+)\]\s+\[(NEW|UPDATE|DESTROY)\]\s+(tcp|udp|sctp)\s+\d+\s+(?:\d+\s+)?([A-Z_]+\s+)?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)(?: packets=\d+ bytes=(\d+))?(?: \[UNREPLIED\])? src=(\S+) dst=\S+ sport=(\d+) dport=\d+(?: packets=\d+ bytes=(\d+))?.*?id=(\d+)/;

export function parseConntrack(line: string): ConntrackEvent | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return {
    timeMs: Number(m[1]) * 1000 + Number(m[2]!.padEnd(6, '0')) / 1000,
    type: m[3] as ConntrackEvent['type'],
    protocol: m[4] as ConntrackEvent['protocol'],
    state: m[5]?.trim(),
    id: m[14]!,
    original: { src: m[6]!, dst: m[7]!, sport: Number(m[8]), dport: Number(m[9]), bytes: m[10] === undefined ? undefined : Number(m[10]) },
    reply: { src: m[11]!, sport: Number(m[12]), bytes: m[13] === undefined ? undefined : Number(m[13]) },
  };
}

/** MAX_LOOKUPS bounds the `conntrack -G` reads in flight; a flow closed beyond it is logged without bytes. */
const MAX_LOOKUPS = 8;

// TCP connections are logged when they close (FIN exchanged or reset), not when their entry expires minutes later.
const CLOSING = new Set(['TIME_WAIT', 'CLOSE', 'LAST_ACK', 'CLOSE_WAIT']);

/** ConntrackWatcher turns conntrack events for portlab's Service addresses into flows. */
export class ConntrackWatcher {
  private child?: ChildProcess;
  private targets = new Map<string, Target>();
  private pods = new Map<string, { name?: string; node?: string }>();
  private readonly open = new Map<string, Open>();
  private lookups = 0;

  constructor(
    private readonly tool: string,
    private readonly observers: Observers,
    private readonly mode: 'nftables' | 'iptables',
    /** accounting: the kernel counts bytes per connection (net.netfilter.nf_conntrack_acct=1). */
    private readonly accounting: boolean,
  ) {}

  /** update learns the addresses of the current state: a translated connection is matched to its Service port by them. */
  update(state: DesiredState): void {
    const targets = new Map<string, Target>();
    const pods = new Map<string, { name?: string; node?: string }>();
    for (const svc of state.services) {
      for (const sp of svc.ports) {
        const proto = sp.protocol.toLowerCase();
        const add = (ip: string | undefined, port: number | undefined, layer: Target['layer']) => {
          if (ip && port !== undefined) targets.set(`${proto} ${ip}:${port}`, { servicePort: sp.key, layer });
        };
        add(svc.clusterIP, sp.port, 'service');
        for (const ip of svc.externalIPs) add(ip, sp.port, 'service');
        for (const ip of svc.loadBalancerIngressIPs.length > 0 ? svc.loadBalancerIngressIPs : svc.loadBalancerIP ? [svc.loadBalancerIP] : []) add(ip, sp.port, 'loadbalancer');
        for (const node of state.nodes) add(node.address, sp.nodePort, 'node');
        for (const e of sp.endpoints) pods.set(`${e.ip}:${e.port}`, { name: e.podName, node: e.node });
      }
    }
    this.targets = targets;
    this.pods = pods;
  }

  start(): void {
    this.child = spawn(this.tool, ['-E', '-e', 'NEW,UPDATE,DESTROY', '-o', 'timestamp,id'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.on('error', () => {});
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const e = parseConntrack(line);
      if (e) this.onEvent(e);
    });
  }

  private onEvent(e: ConntrackEvent): void {
    const target = this.targets.get(`${e.protocol} ${e.original.dst}:${e.original.dport}`);
    if (!target) return;
    const open = this.open.get(e.id);
    if (e.type === 'NEW' && !open) {
      const flow = newFlow({ servicePort: target.servicePort, protocol: e.protocol.toUpperCase() as Flow['protocol'], mode: e.protocol === 'udp' ? 'udp' : 'tcp', clientAddress: e.original.src, clientPort: e.original.sport });
      const hop = newHop(target.layer, `${e.original.dst}:${e.original.dport}`);
      flow.hops.push(hop);
      flow.kernel = this.mode;
      const pod = `${e.reply.src}:${e.reply.sport}`;
      const known = this.pods.get(pod);
      hop.upstream = pod;
      flow.pod = pod;
      flow.podName = known?.name;
      flow.node = known?.node;
      const observer = this.observers.forListener(target.layer, target.servicePort);
      observer.opened();
      this.open.set(e.id, { flow, observer, startedMs: e.timeMs });
      return;
    }
    if (!open) return;
    if (e.type === 'DESTROY' || (e.protocol === 'tcp' && e.state && CLOSING.has(e.state))) {
      this.open.delete(e.id);
      const hop = open.flow.hops[0]!;
      hop.durationMs = e.timeMs - open.startedMs;
      // DESTROY carries the byte counts when the kernel keeps them (net.netfilter.nf_conntrack_acct=1); a closing
      // TCP connection's entry lives on in TIME_WAIT, so its counts are read from it.
      if (e.original.bytes !== undefined) this.close(open, { in: e.original.bytes, out: e.reply.bytes ?? 0 });
      else if (e.type === 'DESTROY' || !this.accounting || this.lookups >= MAX_LOOKUPS) this.close(open, undefined);
      else {
        this.lookups++;
        void this.counts(e).then((counts) => {
          this.lookups--;
          this.close(open, counts);
        });
      }
    }
  }

  private close(open: Open, counts: { in: number; out: number } | undefined): void {
    const hop = open.flow.hops[0]!;
    if (!counts) open.flow.bytesUnknown = true;
    hop.rxBytes = open.flow.bytesIn = counts?.in ?? 0;
    hop.txBytes = open.flow.bytesOut = counts?.out ?? 0;
    open.observer.closed(open.flow, hop, true);
  }

  /** counts reads one entry's byte counts (IP bytes, headers included, as conntrack counts them). */
  private async counts(e: ConntrackEvent): Promise<{ in: number; out: number } | undefined> {
    const o = e.original;
    const got = await run(this.tool, ['-G', '-p', e.protocol, '-s', o.src, '-d', o.dst, '--sport', String(o.sport), '--dport', String(o.dport)], '', 5000);
    const m = /packets=\d+ bytes=(\d+).*?packets=\d+ bytes=(\d+)/.exec(got.stdout);
    return m ? { in: Number(m[1]), out: Number(m[2]) } : undefined;
  }

  stop(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

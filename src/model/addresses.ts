// addresses.ts — the address plan: which loopback address each node, Service and pod gets, deterministically.
import type { ClusterConfig } from '../manifest/service-allocation.js';
import { isValidCIDR, type IPFamily } from '../manifest/k8s-rules.js';

/** Cidr is an IPv4 block such as 127.10.0.0/16. */
export interface Cidr {
  base: number;
  size: number;
  text: string;
}

export function parseCidr(text: string): Cidr {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!m) throw new Error(`"${text}" is not an IPv4 CIDR such as 127.10.0.0/16`);
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 30 || bits < 8) throw new Error(`"${text}" is not a usable IPv4 CIDR (prefix /8 to /30)`);
  const ip = ipToInt(octets.join('.'));
  const size = 2 ** (32 - bits);
  return { base: ip - (ip % size), size, text };
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * AddressAllocator hands out host addresses of a CIDR (never the network or broadcast address). It is sticky: an
 * owner keeps the address it had in the previous plan, so a reload that adds a Service does not renumber the others.
 * An address whose owner went away in this plan is handed out again only when nothing else is free, so a new pod never
 * tries to listen where a leaving pod still does.
 */
export class AddressAllocator {
  private readonly used = new Set<number>();
  private readonly cooling = new Set<number>();
  private next = 1;
  readonly assigned = new Map<string, string>();

  constructor(
    private readonly cidr: Cidr,
    private readonly previous: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** contains is true for a host address of the block. */
  contains(ip: string): boolean {
    const n = ipToInt(ip) - this.cidr.base;
    return n > 0 && n < this.cidr.size - 1;
  }

  /** reserveSticky must run for every owner before allocate, so sticky addresses are never handed to newcomers. */
  reserveSticky(owners: string[]): void {
    const present = new Set(owners);
    for (const owner of owners) {
      const ip = this.previous.get(owner);
      if (ip !== undefined) this.claim(owner, ip);
    }
    for (const [owner, ip] of this.previous) if (!present.has(owner) && this.contains(ip)) this.cooling.add(ipToInt(ip) - this.cidr.base);
  }

  /** claim gives owner the address it asks for, when that address is in the block and free; it says whether it did. */
  claim(owner: string, ip: string): boolean {
    if (this.assigned.get(owner) === ip) return true;
    const n = ipToInt(ip) - this.cidr.base;
    if (!this.contains(ip) || this.used.has(n)) return false;
    this.used.add(n);
    this.assigned.set(owner, ip);
    return true;
  }

  allocate(owner: string): string {
    const have = this.assigned.get(owner);
    if (have) return have;
    let n = this.next;
    while (n < this.cidr.size - 1 && (this.used.has(n) || this.cooling.has(n))) n++;
    if (n >= this.cidr.size - 1) {
      // Only cooling addresses are left: reuse the lowest.
      n = 1;
      while (n < this.cidr.size - 1 && this.used.has(n)) n++;
      if (n >= this.cidr.size - 1) throw new Error(`the CIDR ${this.cidr.text} has no free address left for ${owner}; give a larger block`);
    } else this.next = n;
    this.used.add(n);
    const ip = intToIp(this.cidr.base + n);
    this.assigned.set(owner, ip);
    return ip;
  }
}

/** blocksOverlap is true when two address blocks share an address, so two owners could want one address:port. */
export function blocksOverlap(blocks: string[]): boolean {
  const ranges = blocks.map((b) => (b.includes('/') ? parseCidr(b) : { base: ipToInt(b), size: 1, text: b }));
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.base < b.base + b.size && b.base < a.base + a.size) return true;
    }
  }
  return false;
}

/**
 * ServiceCidrs is --service-cidr: an IPv4 block portlab gives cluster IPs from, and optionally an IPv6 block after a
 * comma, as kube-apiserver's --service-cluster-ip-range makes a cluster dual-stack. portlab serves IPv4 on loopback;
 * the IPv6 block makes validation and the rules printer treat the cluster as dual-stack.
 */
export interface ServiceCidrs {
  v4: Cidr;
  v6?: string;
}

export function parseServiceCidrs(text: string): ServiceCidrs {
  const [first, second, ...rest] = text.split(',').map((s) => s.trim());
  if (rest.length > 0) throw new Error(`"${text}" has more than two blocks; give an IPv4 block, and optionally an IPv6 one after a comma`);
  const v4 = parseCidr(first ?? '');
  if (second === undefined) return { v4 };
  if (!second.includes(':') || isValidCIDR(second).length > 0) throw new Error(`"${second}" is not an IPv6 CIDR such as fd00:10::/108`);
  return { v4, v6: second };
}

/** clusterConfig is what the API server's allocators know of the cluster: its families, nodePort range and Service block. */
export function clusterConfig(serviceCidr: string, nodePortRange: [number, number]): ClusterConfig {
  const cidrs = parseServiceCidrs(serviceCidr);
  const families: IPFamily[] = cidrs.v6 ? ['IPv4', 'IPv6'] : ['IPv4'];
  return {
    families,
    nodePortRange,
    serviceCidrContains: (ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip) && ipToInt(ip) - cidrs.v4.base > 0 && ipToInt(ip) - cidrs.v4.base < cidrs.v4.size - 1,
  };
}

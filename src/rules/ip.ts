// ip.ts — IPv4 prefixes as the rules write them (network address, /0 to /32) and as the tracer matches them.
import { intToIp, ipToInt } from '../model/addresses.js';

export interface Prefix {
  base: number;
  bits: number;
}

/** parsePrefix reads "a.b.c.d/n" (or a bare address as /32) and returns its network; undefined when it is not IPv4. */
export function parsePrefix(text: string): Prefix | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(text.trim());
  if (!m || m[1]!.split('.').some((o) => Number(o) > 255)) return undefined;
  const bits = m[2] === undefined ? 32 : Number(m[2]);
  if (bits > 32) return undefined;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ipToInt(m[1]!) & mask) >>> 0, bits };
}

/** normalizePrefix is Go's net.IPNet.String(): "10.1.2.3/8" becomes "10.0.0.0/8". */
export function normalizePrefix(text: string): string | undefined {
  const p = parsePrefix(text);
  return p && `${intToIp(p.base)}/${p.bits}`;
}

/** contains tells whether ip lies in the prefix or equals the address written. */
export function contains(prefixText: string, ip: string): boolean {
  const p = parsePrefix(prefixText);
  const addr = parsePrefix(ip);
  if (!p || !addr || addr.bits !== 32) return false;
  const mask = p.bits === 0 ? 0 : (0xffffffff << (32 - p.bits)) >>> 0;
  return ((addr.base & mask) >>> 0) === p.base;
}

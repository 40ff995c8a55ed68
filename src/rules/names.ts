// names.ts — kube-proxy's chain names: a SHA-256 of the Service port (and endpoint), in base32, so they fit and never clash.
import { createHash } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** base32 is RFC 4648's standard encoding (Go's base32.StdEncoding), without padding: only prefixes are used. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function sha256Base32(text: string): string {
  return base32(createHash('sha256').update(text).digest());
}

/** ServicePortName is kube-proxy's key for one port of one Service. */
export interface ServicePortName {
  namespace: string;
  service: string;
  /** port is the port's name, '' for an unnamed single port. */
  port: string;
}

/** servicePortNameString is ServicePortName.String(): "ns/name:port", or "ns/name" for an unnamed port. */
export function servicePortNameString(spn: ServicePortName): string {
  return `${spn.namespace}/${spn.service}${spn.port ? `:${spn.port}` : ''}`;
}

// nftables names may be 256 bytes; kube-proxy keeps 16 for its prefixes (knftables.NameLengthMax - 16).
const NFT_BASE_MAX = 256 - 16;

function hashAndTruncate(name: string): string {
  const named = `${sha256Base32(name).slice(0, 8)}-${name}`;
  return named.length > NFT_BASE_MAX ? `${named.slice(0, NFT_BASE_MAX - 3)}...` : named;
}

/** nftServiceBase is "HASH-ns/name/proto/port", the base of the service-, local-, external- and firewall- chains. */
export function nftServiceBase(spn: ServicePortName, protocol: string): string {
  return hashAndTruncate(`${spn.namespace}/${spn.service}/${protocol}/${spn.port}`);
}

/** nftEndpointBase is "HASH-ns/name/proto/port__IP/port" (an IPv6 address with dots for colons), for endpoint- and affinity-. */
export function nftEndpointBase(spn: ServicePortName, protocol: string, ip: string, port: number): string {
  return hashAndTruncate(`${spn.namespace}/${spn.service}/${protocol}/${spn.port}__${ip.replaceAll(':', '.')}/${port}`);
}

/** iptPortProtoHash is the 16 characters after KUBE-SVC-, KUBE-SVL-, KUBE-EXT- and KUBE-FW-. */
export function iptPortProtoHash(spn: ServicePortName, protocol: string): string {
  return sha256Base32(servicePortNameString(spn) + protocol).slice(0, 16);
}

/** iptEndpointChain is KUBE-SEP- and 16 characters of the hash of the Service port, protocol and endpoint "IP:port". */
export function iptEndpointChain(spn: ServicePortName, protocol: string, endpoint: string): string {
  return `KUBE-SEP-${sha256Base32(servicePortNameString(spn) + protocol + endpoint).slice(0, 16)}`;
}

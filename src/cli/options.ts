// options.ts — the command line: commands, flags and their defaults, parsed with node:util parseArgs (no dependency).
import net from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { PortlabError } from '../errors.js';
import { parseCidr, parseServiceCidrs } from '../model/addresses.js';
import type { PlanOptions } from '../model/desired-state.js';
import type { LogFormat } from '../observe/log.js';
import type { ProxierOptions } from '../sync/proxier.js';

export type Command = 'up' | 'routes' | 'validate' | 'rules' | 'trace' | 'bench' | 'pod' | 'help' | 'version';
export type ProxyMode = 'userspace' | 'nftables' | 'iptables';

/**
 * Options is every flag after parsing and checking (durations in milliseconds): the address plan's options, the
 * proxier's, and the CLI's own.
 */
export interface Options extends PlanOptions, Omit<ProxierOptions, 'checkClaimsEverySync' | 'shared'> {
  command: Command;
  files: string[];
  admin?: { host: string; port: number };
  logFormat: LogFormat;
  quiet: boolean;
  watch: boolean;
  debug: boolean;
  verbose: boolean;
  output: 'table' | 'wide' | 'json';
  hosts: boolean;
  writeHosts: boolean;
  hostsFile: string;
  positionals: string[];
  /** restartDelayMs is `pod kill --restart-delay`: Infinity for never, undefined for portlab's default. */
  restartDelayMs?: number;
  bench: { quick: boolean; reps: number; json?: string; html?: string; check: boolean; modes: ProxyMode[] };
  /** readTimeoutMs: how long `-f -` or a pipe may stay silent before portlab gives up (--read-timeout). */
  readTimeoutMs: number;
  /** proxyMode is --proxy-mode; rules and trace need a kernel mode, up defaults to userspace. */
  proxyMode?: ProxyMode;
  /** nodeName is the node `rules` and `trace` write for (--node-name); the first node when not given. */
  nodeName?: string;
  trace?: { from: string; to: string; port: number; protocol: 'tcp' | 'udp' | 'sctp' };
}

const flags = {
  file: { type: 'string', short: 'f', multiple: true },
  'node-address': { type: 'string', default: '127.0.0.1' },
  'node-address-v6': { type: 'string', default: 'auto' },
  nodes: { type: 'string', default: '1' },
  'node-cidr': { type: 'string', default: '127.0.1.0/24' },
  'service-cidr': { type: 'string', default: '127.10.0.0/16' },
  'pod-cidr': { type: 'string', default: '127.244.0.0/16' },
  'lb-cidr': { type: 'string', default: '127.20.0.0/16' },
  addresses: { type: 'string', default: 'distinct' },
  'nodeport-hop': { type: 'string', default: 'via-service' },
  'nodeport-range': { type: 'string', default: '30000-32767' },
  mode: { type: 'string', default: 'auto' },
  balance: { type: 'string', default: 'random' },
  seed: { type: 'string' },
  standins: { type: 'string', default: 'auto' },
  'upstream-timeout': { type: 'string', default: '30s' },
  'headers-timeout': { type: 'string', default: '60s' },
  'body-timeout': { type: 'string', default: '300s' },
  'upstream-connections': { type: 'string', default: '512' },
  'udp-timeout': { type: 'string', default: '30s' },
  'idle-timeout': { type: 'string', default: '0' },
  'drain-timeout': { type: 'string', default: '10s' },
  'max-connections': { type: 'string' },
  'port-offset': { type: 'string' },
  admin: { type: 'string', default: '127.0.0.1:10249' },
  'log-format': { type: 'string', default: 'text' },
  quiet: { type: 'boolean', short: 'q', default: false },
  watch: { type: 'boolean', short: 'w', default: false },
  debug: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  output: { type: 'string', short: 'o', default: 'table' },
  hosts: { type: 'boolean', default: false },
  'write-hosts': { type: 'boolean', default: false },
  'hosts-file': { type: 'string', default: '/etc/hosts' },
  'restart-delay': { type: 'string' },
  'proxy-mode': { type: 'string' },
  'read-timeout': { type: 'string', default: '30s' },
  'node-name': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  protocol: { type: 'string', default: 'TCP' },
  quick: { type: 'boolean', default: false },
  check: { type: 'boolean', default: false },
  reps: { type: 'string', default: '5' },
  json: { type: 'string' },
  html: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false },
} as const;

export const USAGE = `portlab — kube-proxy's port translation on one machine, with real sockets

Usage:
  portlab up -f FILE|DIR|- [-f ...] [flags]   run: a listener per nodePort and port, stand-in pods per targetPort
  portlab -f FILE ...                          same as up
  portlab routes -f ... [-o table|wide|json] [--hosts]
                                               print the translation table; opens nothing
  portlab validate -f ...                      check like the API server; exit 0 or 1
  portlab rules -f ... --proxy-mode nftables|iptables [--node-name NAME]
                                               print the rules kube-proxy would write on the node (no root)
  portlab trace -f ... --proxy-mode nftables|iptables --from IP --to IP:PORT [--protocol TCP|UDP|SCTP] [-o json]
                                               follow one packet through those rules
  portlab bench [--quick] [--check] [--reps N] [--json FILE] [--html FILE]
                [--proxy-mode userspace,nftables,iptables]
                                               hop-latency benchmark (loopback only); kernel modes run
                                               in a private network namespace
  portlab pod kill|start|ready|unready NAME [--restart-delay DUR|never] [--admin ADDR:PORT]
                                               kill a stand-in pod of a running portlab as a crash would (it
                                               comes back after --restart-delay, 2s), start it again now, or
                                               flip its readiness as its readiness probe would

Addresses (Linux: all of 127.0.0.0/8 is loopback):
  --node-address IP        node IP for nodePorts (127.0.0.1)
  --node-address-v6 IP|auto|off
                           the node's IPv6 address: nodePorts answer there too. auto (default): ::1 when
                           --node-address is 127.0.0.1 and the host has ::1; off otherwise
  --nodes N                emulate N nodes; node i listens at 127.0.1.i (1)
  --node-cidr CIDR         where nodes live when N > 1 (127.0.1.0/24)
  --service-cidr CIDR[,CIDR6]  cluster IPs (127.10.0.0/16); an IPv6 block after a comma makes the cluster
                           dual-stack for validation and rules (portlab serves IPv4 on loopback)
  --pod-cidr CIDR          stand-in pod IPs (127.244.0.0/16)
  --lb-cidr CIDR           LoadBalancer addresses (127.20.0.0/16)
  --addresses shared       every layer on the node address (for macOS); clashes fail at start
  --nodeport-range A-B     nodePort range for validation and allocation (30000-32767)
  --port-offset N          serve every port below 1024 at port + N, so port: 80 works without root
                           (80 → 8080 with --port-offset 8000)

Forwarding:
  --proxy-mode userspace|nftables|iptables   who translates: portlab's own listeners (userspace, the default), or
                           the kernel, with kube-proxy's rules in portlab's own table (needs root and nft/iptables)
  --nodeport-hop via-service|direct   nodePort → Service port → pod (default), or nodePort → pod as kube-proxy's DNAT
  --mode auto|tcp|http     auto: L7 for appProtocol http or port names http/http-*; tcp: L4 everywhere (auto)
  --balance random|round-robin        endpoint choice per connection (L4) or request (L7) (random)
  --seed N                 make random balancing repeatable
  --standins auto|always|never        stand-in pods for selector Services: auto gives them only to manifests
                           with no workload at all (like the seed); always to every selector that matches none
  --upstream-timeout DUR   L7: answer 504 when a pod has not started its answer, waiting included (30s)
  --headers-timeout DUR    L7: answer 408 to a client that has not sent its headers (60s)
  --body-timeout DUR       L7: answer 408 to a client that has not sent its whole request (300s)
  --upstream-connections N L7: connections per upstream; as many requests may wait, more get 503 at once (512)
  --udp-timeout DUR        UDP session idle timeout (30s)
  --idle-timeout DUR       L4 idle timeout, 0 for none (0)
  --drain-timeout DUR      how long removed listeners and shutdown wait for open connections (10s)
  --max-connections N      per listener; beyond it new connections are refused at once

Watching:
  --admin ADDR:PORT|off    metrics, health and dashboard (127.0.0.1:10249)
  --log-format text|json   one line per connection or request (text)
  -q, --quiet              no traffic log
  -w, --watch              reload when a manifest file changes
  --read-timeout DUR       how long -f - or a pipe may stay silent before portlab gives up (30s)
  --write-hosts            add cluster IP names to /etc/hosts while running (--hosts-file to change)
  --verbose                print start-up details (the open-file limit and the connection budget)
  --debug                  print stacks with errors

Rules (portlab rules, portlab trace):
  --proxy-mode nftables|iptables       which of kube-proxy's kernel modes to write
  --node-name NAME         the node to write for (node-1); another name is a node at --node-address
  --from IP --to IP:PORT   the packet trace follows; --protocol TCP|UDP|SCTP (TCP)

Exit codes: 0 ok, 1 invalid manifest, 2 usage error, 3 a listener could not be opened or a kernel mode is
unavailable (not root, or nft/iptables missing).
Durations take ms, s, m or h (e.g. 500ms, 30s, 2m, 1h); a bare number is seconds.`;

function usage(message: string): PortlabError {
  return new PortlabError('PORTLAB_USAGE', message);
}

export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw usage(`--${flag} ${JSON.stringify(v)}: expected a duration such as 500ms, 30s, 2m or 1h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  return Math.round(Number(m[1]) * unit);
}

function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw usage(`--${flag} ${JSON.stringify(v)}: expected one of ${allowed.join(', ')}`);
  return v as T;
}

function positiveInt(flag: string, v: string, min = 1, max = 1_000_000): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`--${flag} ${JSON.stringify(v)}: expected a whole number from ${min} to ${max}`);
  return n;
}

function cidr(flag: string, v: string): string {
  try {
    parseCidr(v);
  } catch (err) {
    throw usage(`--${flag}: ${(err as Error).message}`);
  }
  return v;
}

function serviceCidr(v: string): string {
  try {
    parseServiceCidrs(v);
  } catch (err) {
    throw usage(`--service-cidr: ${(err as Error).message}`);
  }
  return v;
}

function ipv4(flag: string, v: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(v) || v.split('.').some((o) => Number(o) > 255)) throw usage(`--${flag} ${JSON.stringify(v)}: expected an IPv4 address such as 127.0.0.1`);
  return v;
}

/**
 * nodeAddress6 is --node-address-v6: an IPv6 address, off, or auto. A dual-stack node's nodePorts answer on both
 * families; on loopback that is ::1 beside 127.0.0.1. auto takes ::1 only beside the default node address, so
 * portlabs on other node addresses (the tests, a second run) never contend for [::1]:nodePort.
 */
function nodeAddress6(v: string, nodeAddress: string, mode: string | undefined): string | undefined {
  if (v === 'off') return undefined;
  // portlab's kernel rules are kube-proxy's IPv4 table (ip portlab, iptables): nothing would translate [::1].
  if (mode === 'nftables' || mode === 'iptables') {
    if (v === 'auto') return undefined;
    throw usage(`--node-address-v6 is for --proxy-mode userspace: in --proxy-mode ${mode} portlab programs IPv4 rules only; drop --node-address-v6`);
  }
  if (v === 'auto') return nodeAddress === '127.0.0.1' && hasLoopback6() ? '::1' : undefined;
  if (!net.isIPv6(v)) throw usage(`--node-address-v6 ${JSON.stringify(v)}: expected an IPv6 address such as ::1, auto, or off`);
  return v;
}

/** hasLoopback6: the host has ::1 (IPv6 can be disabled, and a new network namespace may lack it). */
export function hasLoopback6(): boolean {
  return Object.values(os.networkInterfaces()).some((addrs) => addrs?.some((a) => a.family === 'IPv6' && a.address === '::1'));
}

/** parseOptions reads argv (without node and script). A bad flag throws PORTLAB_USAGE (exit 2). */
export function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: flags, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage((err as Error).message.replace(/\. To specify a positional argument.*$/, ''));
  }
  const v = parsed.values;
  const positionals = [...parsed.positionals];
  let command: Command = 'up';
  if (v.help) command = 'help';
  else if (v.version) command = 'version';
  else if (positionals.length > 0) {
    const first = positionals.shift()!;
    if (!['up', 'routes', 'validate', 'rules', 'trace', 'bench', 'pod', 'help'].includes(first)) throw usage(`unknown command ${JSON.stringify(first)}: expected up, routes, validate, rules, trace, bench or pod`);
    command = first as Command;
  }
  const files = v.file ?? [];
  if (['up', 'routes', 'validate', 'rules', 'trace'].includes(command) && files.length === 0) {
    throw usage(`${command} needs at least one -f FILE, DIR or - (stdin); try: portlab ${command} -f fixtures/my-service.yml`);
  }
  const range = /^(\d+)-(\d+)$/.exec(v['nodeport-range']);
  if (!range || Number(range[1]) > Number(range[2]) || Number(range[2]) > 65535) throw usage(`--nodeport-range ${JSON.stringify(v['nodeport-range'])}: expected LOW-HIGH such as 30000-32767`);
  let admin: Options['admin'];
  if (v.admin !== 'off') {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v.admin);
    if (!m || Number(m[2]) > 65535) throw usage(`--admin ${JSON.stringify(v.admin)}: expected ADDRESS:PORT such as 127.0.0.1:10249, or off`);
    admin = { host: m[1]!, port: Number(m[2]) };
  }
  return {
    command,
    files,
    nodeAddress: ipv4('node-address', v['node-address']),
    nodeAddress6: nodeAddress6(v['node-address-v6'], v['node-address'], v['proxy-mode']),
    nodes: positiveInt('nodes', v.nodes, 1, 254),
    nodeCidr: cidr('node-cidr', v['node-cidr']),
    serviceCidr: serviceCidr(v['service-cidr']),
    podCidr: cidr('pod-cidr', v['pod-cidr']),
    loadBalancerCidr: cidr('lb-cidr', v['lb-cidr']),
    addresses: oneOf('addresses', v.addresses, ['distinct', 'shared'] as const),
    nodeportHop: oneOf('nodeport-hop', v['nodeport-hop'], ['via-service', 'direct'] as const),
    nodePortRange: [Number(range[1]), Number(range[2])],
    mode: oneOf('mode', v.mode, ['auto', 'tcp', 'http'] as const),
    balance: oneOf('balance', v.balance, ['random', 'round-robin'] as const),
    seed: v.seed === undefined ? undefined : positiveInt('seed', v.seed, 0, 2 ** 32 - 1),
    standins: oneOf('standins', v.standins, ['auto', 'always', 'never'] as const),
    upstreamTimeoutMs: parseDuration('upstream-timeout', v['upstream-timeout']),
    headersTimeoutMs: parseDuration('headers-timeout', v['headers-timeout']),
    bodyTimeoutMs: parseDuration('body-timeout', v['body-timeout']),
    upstreamConnections: positiveInt('upstream-connections', v['upstream-connections'], 1, 65_535),
    udpTimeoutMs: parseDuration('udp-timeout', v['udp-timeout']),
    idleTimeoutMs: parseDuration('idle-timeout', v['idle-timeout']),
    drainTimeoutMs: parseDuration('drain-timeout', v['drain-timeout']),
    portOffset: portOffset(command, v['port-offset'], v['proxy-mode']),
    maxConnections: v['max-connections'] === undefined ? undefined : positiveInt('max-connections', v['max-connections']),
    admin,
    logFormat: v.quiet ? 'none' : oneOf('log-format', v['log-format'], ['text', 'json'] as const),
    quiet: v.quiet,
    watch: v.watch,
    debug: v.debug,
    verbose: v.verbose,
    output: oneOf('output', v.output, ['table', 'wide', 'json'] as const),
    hosts: v.hosts,
    writeHosts: v['write-hosts'],
    hostsFile: v['hosts-file'],
    positionals,
    restartDelayMs: v['restart-delay'] === undefined ? undefined : v['restart-delay'] === 'never' ? Number.POSITIVE_INFINITY : parseDuration('restart-delay', v['restart-delay']),
    bench: command === 'bench' ? benchOptions(v) : { quick: false, reps: 1, check: false, modes: ['userspace'] },
    proxyMode: proxyMode(command, v['proxy-mode']),
    kernelTranslates: command === 'up' && (v['proxy-mode'] === 'nftables' || v['proxy-mode'] === 'iptables'),
    readTimeoutMs: parseDuration('read-timeout', v['read-timeout']),
    nodeName: v['node-name'],
    trace: command === 'trace' ? traceOptions(v.from, v.to, v.protocol) : undefined,
  };
}

function proxyMode(command: Command, v: string | undefined): ProxyMode | undefined {
  if (command === 'rules' || command === 'trace') {
    if (v === undefined) throw usage(`${command} needs --proxy-mode nftables or --proxy-mode iptables: the kube-proxy mode whose rules to ${command === 'rules' ? 'print' : 'follow'}`);
    return oneOf('proxy-mode', v, ['nftables', 'iptables'] as const);
  }
  if (command === 'bench') return undefined; // a list: benchModes
  return v === undefined ? undefined : oneOf('proxy-mode', v, ['userspace', 'nftables', 'iptables'] as const);
}

/** benchModes is bench's --proxy-mode: a comma-separated list of the modes to compare (userspace alone by default). */
function benchOptions(v: { quick: boolean; reps: string; json?: string; html?: string; check: boolean; 'proxy-mode'?: string }): Options['bench'] {
  const modes = benchModes(v['proxy-mode']);
  if (v.check && v.quick) throw usage('--check compares a full run with the targets, and a --quick run is too short for that: drop --quick or --check');
  if (v.check && modes.some((m) => m !== 'userspace')) throw usage('--check compares the userspace benchmark with its targets; the proxy-mode comparison has none: drop --check');
  return { quick: v.quick, reps: positiveInt('reps', v.reps, 1, 100), json: v.json, html: v.html, check: v.check, modes };
}

function benchModes(v: string | undefined): ProxyMode[] {
  if (v === undefined) return ['userspace'];
  const modes = v.split(',').map((m) => oneOf('proxy-mode', m.trim(), ['userspace', 'nftables', 'iptables'] as const));
  return [...new Set(modes)];
}

function portOffset(command: Command, v: string | undefined, mode: string | undefined): number {
  if (v === undefined) return 0;
  // The kernel's rules send packets to the declared targetPort: a pod served elsewhere would not answer them.
  if (command === 'up' && (mode === 'nftables' || mode === 'iptables')) throw usage(`--port-offset is for --proxy-mode userspace: in --proxy-mode ${mode} portlab runs as root, which may use ports below 1024 as declared; drop --port-offset`);
  return positiveInt('port-offset', v, 1, 64511);
}

function traceOptions(from: string | undefined, to: string | undefined, protocol: string): Options['trace'] {
  if (!from || !to) throw usage('trace needs --from IP and --to IP:PORT, e.g. --from 10.0.0.2 --to 127.10.0.1:8080');
  ipv4('from', from);
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(to);
  if (!m || Number(m[2]) > 65535 || Number(m[2]) < 1) throw usage(`--to ${JSON.stringify(to)}: expected IP:PORT such as 127.10.0.1:8080`);
  ipv4('to', m[1]!);
  const p = oneOf('protocol', protocol.toUpperCase(), ['TCP', 'UDP', 'SCTP'] as const);
  return { from, to: m[1]!, port: Number(m[2]), protocol: p.toLowerCase() as 'tcp' | 'udp' | 'sctp' };
}

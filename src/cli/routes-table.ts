// routes-table.ts — the translation table people read: one line per port, then a command to try each layer.
import { HTTP2_PORT, hostPort, servedPort, type DesiredState, type ServicePortState, type ServiceState } from '../model/desired-state.js';
import { iptPortProtoHash, nftServiceBase } from '../rules/names.js';

/** kubeProxyChains names the chains kube-proxy gives a Service port: `portlab rules` prints them. */
export function kubeProxyChains(svc: ServiceState, sp: ServicePortState): { nftables: string; iptables: string } {
  const spn = { namespace: svc.namespace, service: svc.name, port: sp.name };
  const protocol = sp.protocol.toLowerCase();
  return { nftables: `service-${nftServiceBase(spn, protocol)}`, iptables: `KUBE-SVC-${iptPortProtoHash(spn, protocol)}` };
}


// Port names and appProtocols that say which client fits (IANA service names, and Kubernetes' appProtocol values).
const HTTP_NAMES = /^(http|http-.*|web|metrics|prometheus)$/;
const CLIENTS: { names: RegExp; udp: boolean; command: (a: string, p: number) => string }[] = [
  { names: HTTP2_PORT, udp: false, command: (a, p) => `grpcurl -plaintext ${hostPort(a, p)} list` },
  { names: /^(https|https-.*|tls)$/, udp: false, command: (a, p) => `curl -sk https://${hostPort(a, p)}/` },
  { names: /^(redis|redis-.*)$/, udp: false, command: (a, p) => `redis-cli -h ${a} -p ${p} ping` },
  { names: /^(postgres|postgresql|pg)$/, udp: false, command: (a, p) => `psql -h ${a} -p ${p} -U postgres` },
  { names: /^(mysql|mariadb)$/, udp: false, command: (a, p) => `mysql -h ${a} -P ${p} -u root` },
  { names: /^(dns-tcp|dns|domain)$/, udp: false, command: (a, p) => `dig +tcp @${a} -p ${p} kubernetes.default.svc.cluster.local` },
  { names: /^(dns|dns-udp|domain)$/, udp: true, command: (a, p) => `dig @${a} -p ${p} kubernetes.default.svc.cluster.local` },
];

/**
 * tryCommand is a command for this port's protocol: the fitting client where the port's name or appProtocol says
 * which, curl for HTTP (an L7 port, or one named for HTTP or metrics), and a neutral nc otherwise.
 */
export function tryCommand(sp: ServicePortState, address: string, port: number): string {
  const hints = [sp.appProtocol?.toLowerCase() ?? '', sp.name.toLowerCase()];
  const client = CLIENTS.find((c) => (sp.protocol === 'UDP') === c.udp && hints.some((h) => c.names.test(h)));
  if (client) return client.command(address, port);
  if (sp.protocol === 'UDP') return `echo hello | nc -u -w1 ${address} ${port}`;
  if (sp.protocol === 'SCTP') return `ncat --sctp ${address} ${port}`;
  if (sp.mode === 'http' || hints.some((h) => HTTP_NAMES.test(h))) return `curl -s http://${hostPort(address, port)}/`;
  return `nc -v ${address} ${port}`;
}

/** served writes a served port, saying the declared one when --port-offset moved it: `8080 (port 80)`. */
/** nodeAddresses are where nodePorts answer: every node's address, and the first node's IPv6 address when it has one. */
function nodeAddresses(state: DesiredState): string[] {
  return state.nodes.flatMap((n) => (n.address6 ? [n.address, n.address6] : [n.address]));
}
const bracket = (a: string) => (a.includes(':') ? `[${a}]` : a);

function served(port: number, offset: number, field: string): string {
  const at = servedPort(port, offset);
  return at === port ? String(port) : `${at} (${field} ${port})`;
}

function podsOf(sp: ServicePortState, offset: number) {
  return sp.endpoints.map((e) => {
    const port = e.podKey ? servedPort(e.port, offset) : e.port;
    const shown = e.podKey ? served(e.port, offset, 'targetPort') : String(e.port);
    return { ...e, port, label: `${e.podName ? 'pod' : 'endpoint'} ${e.ip}:${shown}` };
  });
}

/**
 * routeLines prints `my-service/http  L7  node 127.0.0.1:30000 → service 127.10.0.1:8080 → pod 127.244.0.1:5000`. In a
 * kernel mode every address is translated straight to a pod: `kernel DNAT  node …, service … ⇒ pod …`.
 */
export function routeLines(state: DesiredState, opts: { nodeportHop: 'via-service' | 'direct'; wide?: boolean; tryIt?: boolean; kernel?: boolean }): string[] {
  const out: string[] = [];
  const pods = new Map(state.pods.map((p) => [p.key, p]));
  for (const svc of state.services) {
    const name = `${svc.namespace === 'default' ? '' : `${svc.namespace}/`}${svc.name}`;
    if (svc.type === 'ExternalName') {
      out.push(`${name}  ExternalName → ${svc.externalName}: a DNS alias, nothing to listen on (note only)`);
      continue;
    }
    const offset = state.portOffset;
    for (const sp of svc.ports) {
      const eps = podsOf(sp, offset);
      const port = servedPort(sp.port, offset);
      const target = eps.length === 0 ? 'no endpoints (connections are refused)' : eps.length === 1 ? eps[0]!.label : `${eps[0]!.label} (+${eps.length - 1} more)`;
      const label = `${name}/${sp.name || sp.port}`;
      const mode = opts.kernel ? `kernel DNAT ${sp.protocol}` : { http: 'L7', udp: 'UDP', tcp: 'L4', sctp: 'SCTP' }[sp.mode];
      const parts: string[] = [];
      if (sp.mode === 'sctp' && !opts.kernel) {
        out.push(`${label}  ${mode}  not served by the userspace proxy (Node.js has no SCTP sockets); \`portlab rules\` shows its kernel rules`);
        continue;
      }
      if (svc.headless) {
        out.push(`${label}  ${mode}  headless (clusterIP: None): no service listener; pods: ${eps.map((e) => `${e.ip}:${e.port}`).join(', ') || 'none'}`);
        continue;
      }
      if (sp.nodePort !== undefined) {
        const nodes = nodeAddresses(state).map((a) => `${bracket(a)}:${served(sp.nodePort!, offset, 'nodePort')}`);
        parts.push(`node ${nodes.length === 1 ? nodes[0] : `{${nodes.join(', ')}}`}`);
        if (opts.nodeportHop === 'direct' && !opts.kernel) parts.push('(direct)');
      }
      if (svc.loadBalancerIP) parts.push(`lb ${svc.loadBalancerIP}:${served(sp.port, offset, 'port')}`);
      parts.push(`service ${svc.clusterIP}:${served(sp.port, offset, 'port')}`);
      parts.push(target);
      if (opts.kernel) out.push(`${label}  ${mode}  ${parts.slice(0, -1).join(', ')} ⇒ ${target}`);
      else out.push(`${label}  ${mode}  ${parts.join(' → ').replace(' → (direct) → ', ' ⇒ (direct) ')}`);
      if (opts.wide) {
        out.push(`    targetPort ${sp.targetPort}  affinity ${svc.sessionAffinity}  externalTrafficPolicy ${svc.externalTrafficPolicy}  internalTrafficPolicy ${svc.internalTrafficPolicy}`);
        const chains = kubeProxyChains(svc, sp);
        out.push(`    kube-proxy chains: ${chains.nftables} (nftables), ${chains.iptables} (iptables): \`portlab rules\``);
        for (const e of eps) {
          const why = e.podKey ? pods.get(e.podKey)?.notReady : undefined;
          out.push(`    endpoint ${e.ip}:${e.port}${e.podName ? `  pod ${e.podName}` : ''}${e.node ? `  ${e.node}` : ''}${e.ready ? '' : why ? `  (not ready ${why})` : '  (not ready)'}`);
        }
      }
      if (opts.tryIt) {
        if (sp.nodePort !== undefined) out.push(`    node:    ${tryCommand(sp, state.nodes[0]!.address, servedPort(sp.nodePort, offset))}`);
        const v6 = state.nodes[0]!.address6;
        if (sp.nodePort !== undefined && v6) out.push(`    node v6: ${tryCommand(sp, v6, servedPort(sp.nodePort, offset))}`);
        if (svc.loadBalancerIP) out.push(`    lb:      ${tryCommand(sp, svc.loadBalancerIP, port)}`);
        out.push(`    service: ${tryCommand(sp, svc.clusterIP!, port)}`);
        if (eps[0]) out.push(`    pod:     ${tryCommand(sp, eps[0].ip, eps[0].port)}`);
      }
    }
    if (svc.healthCheckNodePort !== undefined) out.push(`${name}  healthCheckNodePort ${state.nodes.map((n) => `${n.address}:${svc.healthCheckNodePort}`).join(', ')}`);
  }
  return out;
}

/** routesJson is the machine-readable table, in the spirit of `kubectl get -o json`. */
export function routesJson(state: DesiredState, nodeportHop: string): unknown {
  return {
    apiVersion: 'portlab/v1',
    kind: 'RouteList',
    nodeportHop,
    nodes: state.nodes,
    items: state.services.map((svc: ServiceState) => ({
      service: svc.key,
      type: svc.type,
      clusterIP: svc.headless ? 'None' : svc.clusterIP,
      loadBalancerIP: svc.loadBalancerIP,
      sessionAffinity: svc.sessionAffinity,
      externalTrafficPolicy: svc.externalTrafficPolicy,
      internalTrafficPolicy: svc.internalTrafficPolicy,
      healthCheckNodePort: svc.healthCheckNodePort,
      externalName: svc.externalName,
      ports: svc.ports.map((sp) => ({
        key: sp.key,
        name: sp.name,
        protocol: sp.protocol,
        mode: sp.mode,
        nodePort: sp.nodePort,
        port: sp.port,
        targetPort: sp.targetPort,
        node: sp.nodePort === undefined ? [] : nodeAddresses(state).map((a) => hostPort(a, sp.nodePort!)),
        service: svc.clusterIP ? `${svc.clusterIP}:${sp.port}` : undefined,
        endpoints: sp.endpoints,
        kubeProxyChains: kubeProxyChains(svc, sp),
      })),
    })),
    pods: state.pods,
  };
}

/** hostsLines are /etc/hosts lines for cluster IPs, as kubefwd writes them. */
export function hostsLines(state: DesiredState): string[] {
  return state.services
    .filter((s) => s.clusterIP)
    .map((s) => `${s.clusterIP} ${s.name} ${s.name}.${s.namespace} ${s.name}.${s.namespace}.svc ${s.name}.${s.namespace}.svc.cluster.local`);
}

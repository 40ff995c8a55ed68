// service-allocation.ts — what the API server does to a Service before it validates it (the REST storage's
// BeginCreate): cluster IPs and families made consistent and checked, requested nodePorts and healthCheckNodePort
// reserved. A failure here stops the create with the allocator's words, and no validation error is reported.
import type { FieldPath } from './documents.js';
import { fieldError, ipFamily, isValidIP, type IPFamily } from './k8s-rules.js';
import { needsHealthCheck, type ServiceObject } from './service-defaults.js';

export interface ClusterConfig {
  /** families are the cluster's Service IP families, primary first (from --service-cidr). */
  families: IPFamily[];
  nodePortRange: [number, number];
  /** contains is true for a host address of --service-cidr, the block portlab gives cluster IPs from. */
  serviceCidrContains(ip: string): boolean;
}

export interface AllocationError {
  path: FieldPath;
  message: string;
  /** hint says more than the API server would (which Service holds a port), on a line of its own. */
  hint?: string;
  /** internal marks an error the API server reports as "Internal error occurred", not as an invalid field. */
  internal?: boolean;
}

/** Reservation is what one Service's create holds; it is committed only if the Service is created. */
export interface Reservation {
  nodePorts: number[];
  clusterIPs: string[];
}

/**
 * ServiceAllocators hold the cluster's nodePorts and cluster IPs across the Services of one apply, in apply order, as
 * the API server's allocators do. Ports left out are not drawn here: portlab's model gives them the lowest free port
 * once every requested one is known (the API server draws at random, so no apply could rely on its choice).
 */
export class ServiceAllocators {
  /** nodePorts and clusterIPs map what is held to the Service (ns/name) that holds it. */
  private readonly nodePorts = new Map<number, string>();
  private readonly clusterIPs = new Map<string, string>();

  constructor(private readonly cluster: ClusterConfig) {}

  /** allocate runs the create-time allocation for svc, filling in its IP families; it returns the errors, or the reservation. */
  allocate(svc: ServiceObject): { errors: AllocationError[]; reservation?: Reservation } {
    // NormalizeClusterIPs: a client that sets only clusterIP gets clusterIPs from it.
    if (svc.clusterIP !== '' && svc.clusterIPs.length === 0) svc.clusterIPs = [svc.clusterIP];
    const errors = this.initIPFamilyFields(svc);
    if (errors.length > 0) return { errors };
    const reservation: Reservation = { nodePorts: [], clusterIPs: [] };
    const ipErrors = this.reserveClusterIPs(svc, reservation);
    if (ipErrors.length > 0) return { errors: ipErrors };
    const portErrors = this.reserveNodePorts(svc, reservation);
    if (portErrors.length > 0) return { errors: portErrors };
    return { errors: [], reservation };
  }

  /** commit records what a created Service holds. Applying the same Service again is an update: it gives up what it held before. */
  commit(svc: ServiceObject, reservation: Reservation): void {
    const owner = ownerOf(svc);
    for (const map of [this.nodePorts, this.clusterIPs] as Map<number | string, string>[]) for (const [k, v] of map) if (v === owner) map.delete(k);
    for (const n of reservation.nodePorts) this.nodePorts.set(n, owner);
    for (const ip of reservation.clusterIPs) this.clusterIPs.set(ip, owner);
  }

  /** heldBy names the Service that holds a port or IP, for a hint; undefined when this Service holds it itself. */
  private heldBy(map: Map<number | string, string>, key: number | string): string | undefined {
    const owner = map.get(key);
    return owner === undefined ? undefined : `held by Service ${owner}, applied earlier`;
  }

  /** clusterIPsPath points a clusterIPs error at the field the manifest wrote. */
  private clusterIPsPath(svc: ServiceObject, i?: number): FieldPath {
    if (!svc.clusterIPsGiven) return ['spec', 'clusterIP'];
    return i === undefined ? ['spec', 'clusterIPs'] : ['spec', 'clusterIPs', i];
  }

  /** initIPFamilyFields defaults ipFamilyPolicy and ipFamilies and checks them against the cluster (alloc.go). */
  private initIPFamilyFields(svc: ServiceObject): AllocationError[] {
    if (svc.type === 'ExternalName') return [];
    const headless = svc.clusterIP === 'None';
    const selectorless = !svc.selector || Object.keys(svc.selector).length === 0;
    svc.ipFamilyPolicy ??= headless && selectorless ? 'RequireDualStack' : 'SingleStack';
    const errors = validateClusterIPsRelatedFields(svc).map((e) => ({ ...e, path: e.path[1] === 'clusterIPs' ? this.clusterIPsPath(svc, e.path[2] as number | undefined) : e.path }));
    if (errors.length > 0) return errors;
    const policyPath: FieldPath = ['spec', 'ipFamilyPolicy'];
    if (svc.ipFamilyPolicy === 'SingleStack') {
      const why = "must be 'RequireDualStack' or 'PreferDualStack' when multiple";
      if (svc.clusterIPs.length === 2) errors.push({ path: policyPath, message: fieldError.invalid('spec.ipFamilyPolicy', svc.ipFamilyPolicy, `${why} cluster IPs are specified`) });
      if (svc.ipFamilies.length === 2) errors.push({ path: policyPath, message: fieldError.invalid('spec.ipFamilyPolicy', svc.ipFamilyPolicy, `${why} IP families are specified`) });
    }
    // ipFamilies follow clusterIPs where the manifest left them out.
    svc.clusterIPs.forEach((ip, i) => {
      if (ip === 'None' || i < svc.ipFamilies.length) return;
      const family = ipFamily(ip)!;
      if (!this.cluster.families.includes(family)) {
        errors.push({ path: this.clusterIPsPath(svc, i), message: fieldError.invalid(`spec.clusterIPs[${i}]`, svc.clusterIPs, `${family} is not configured on this cluster`) });
      } else svc.ipFamilies.push(family);
    });
    if (errors.length > 0) return errors;
    const other = (f: string): IPFamily => (f === 'IPv4' ? 'IPv6' : 'IPv4');
    if (headless && selectorless) {
      // Headless and selectorless: any families are allowed, even ones the cluster does not have.
      if (svc.ipFamilies.length === 0) svc.ipFamilies = [this.cluster.families[0]!];
      if (svc.ipFamilies.length < 2 && svc.ipFamilyPolicy !== 'SingleStack') svc.ipFamilies.push(other(svc.ipFamilies[0]!));
      return [];
    }
    if (svc.ipFamilyPolicy === 'RequireDualStack' && this.cluster.families.length < 2) {
      errors.push({ path: policyPath, message: fieldError.invalid('spec.ipFamilyPolicy', svc.ipFamilyPolicy, 'this cluster is not configured for dual-stack services') });
    }
    svc.ipFamilies.forEach((family, i) => {
      if (!this.cluster.families.includes(family as IPFamily)) {
        errors.push({ path: ['spec', 'ipFamilies', i], message: fieldError.invalid(`spec.ipFamilies[${i}]`, family, 'not configured on this cluster') });
      }
    });
    if (errors.length > 0) return errors;
    if (svc.ipFamilies.length === 0) svc.ipFamilies = [this.cluster.families[0]!];
    if (svc.ipFamilyPolicy !== 'SingleStack' && svc.ipFamilies.length === 1 && this.cluster.families.length === 2) svc.ipFamilies.push(other(svc.ipFamilies[0]!));
    return [];
  }

  /**
   * reserveClusterIPs holds a requested cluster IP that lies in --service-cidr. One outside it is portlab's own case:
   * the model gives the Service an address on loopback and says so, so `kubectl get -o yaml` output stays usable.
   */
  private reserveClusterIPs(svc: ServiceObject, reservation: Reservation): AllocationError[] {
    if (svc.type === 'ExternalName' || svc.clusterIPs[0] === 'None') return [];
    for (const ip of svc.clusterIPs) {
      if (!this.cluster.serviceCidrContains(ip)) continue;
      const holder = this.clusterIPs.get(ip);
      if ((holder !== undefined && holder !== ownerOf(svc)) || reservation.clusterIPs.includes(ip)) {
        const hint = this.heldBy(this.clusterIPs as Map<number | string, string>, ip);
        return [{ path: this.clusterIPsPath(svc), message: fieldError.invalid('spec.clusterIPs', svc.clusterIPs, `failed to allocate IP ${ip}: provided IP is already allocated`), hint }];
      }
      reservation.clusterIPs.push(ip);
    }
    return [];
  }

  /** take is the port allocator's Allocate: in range, and not held. It returns the failure and, for a held port, who holds it. */
  private take(port: number, reservation: Reservation, svc: ServiceObject): { failure: string; hint?: string } | undefined {
    const [lo, hi] = this.cluster.nodePortRange;
    if (port < lo || port > hi) return { failure: `provided port is not in the valid range. The range of valid ports is ${lo}-${hi}` };
    const holder = this.nodePorts.get(port);
    if (holder !== undefined && holder !== ownerOf(svc)) return { failure: 'provided port is already allocated', hint: this.heldBy(this.nodePorts as Map<number | string, string>, port) };
    if (reservation.nodePorts.includes(port)) return { failure: 'provided port is already allocated', hint: 'held by another port of this Service: only ports with the same port number may share a nodePort' };
    reservation.nodePorts.push(port);
    return undefined;
  }

  /**
   * reserveNodePorts is initNodePorts and allocHealthCheckNodePort. Ports with the same port number share one
   * nodePort (a TCP and a UDP port 53, say); two ports with different numbers may not ask for the same one.
   */
  private reserveNodePorts(svc: ServiceObject, reservation: Reservation): AllocationError[] {
    if (svc.type === 'NodePort' || svc.type === 'LoadBalancer') {
      const shouldAllocate = svc.type !== 'LoadBalancer' || svc.allocateLoadBalancerNodePorts !== false;
      const byPort = new Map<number, number>();
      for (let i = 0; i < svc.ports.length; i++) {
        const sp = svc.ports[i]!;
        if (sp.nodePort === 0 && !shouldAllocate) continue;
        const path: FieldPath = ['spec', 'ports', i, 'nodePort'];
        const held = byPort.get(sp.port);
        if (held === undefined) {
          const requested = svc.ports.find((p) => p.port === sp.port && p.nodePort !== 0)?.nodePort;
          // Left out: the model allocates it later. -1 marks "drawn", so twins of this port share it.
          if (requested === undefined) {
            byPort.set(sp.port, -1);
            continue;
          }
          const taken = this.take(requested, reservation, svc);
          if (taken) return [{ path: sp.nodePort === requested ? path : ['spec', 'ports', i], message: fieldError.invalid(`spec.ports[${i}].nodePort`, requested, taken.failure), hint: taken.hint }];
          byPort.set(sp.port, requested);
        } else if (sp.nodePort !== 0 && sp.nodePort !== held) {
          const taken = this.take(sp.nodePort, reservation, svc);
          if (taken) return [{ path, message: fieldError.invalid(`spec.ports[${i}].nodePort`, sp.nodePort, taken.failure), hint: taken.hint }];
        }
      }
    }
    if (needsHealthCheck(svc) && svc.healthCheckNodePort !== 0) {
      const taken = this.take(svc.healthCheckNodePort, reservation, svc);
      if (taken) {
        return [{ path: ['spec', 'healthCheckNodePort'], message: `failed to allocate requested HealthCheck NodePort ${svc.healthCheckNodePort}: ${taken.failure}`, internal: true, hint: taken.hint }];
      }
    }
    return [];
  }
}

const ownerOf = (svc: ServiceObject) => `${svc.namespace}/${svc.name}`;

/**
 * validateClusterIPsRelatedFields is ValidateServiceClusterIPsRelatedFields: clusterIP and clusterIPs agree, families
 * and the policy have known values, clusterIPs are IPs ('None' first and alone), at most one per family, matching
 * ipFamilies. The API server runs it while allocating, so its errors stop the create there.
 */
export function validateClusterIPsRelatedFields(svc: ServiceObject): AllocationError[] {
  if (svc.type === 'ExternalName') return [];
  const errors: AllocationError[] = [];
  const push = (path: FieldPath, message: string) => errors.push({ path, message });
  if (svc.clusterIP !== '') {
    if (svc.clusterIPs.length === 0) push(['spec', 'clusterIPs'], fieldError.required('spec.clusterIPs'));
    else if (svc.clusterIPs[0] !== svc.clusterIP) push(['spec', 'clusterIPs'], fieldError.invalid('spec.clusterIPs', svc.clusterIPs, 'first value must match `clusterIP`'));
  } else if (svc.clusterIPs.length !== 0) {
    push(['spec', 'clusterIPs'], fieldError.invalid('spec.clusterIPs', svc.clusterIPs, 'must be empty when `clusterIP` is not specified'));
  }
  const seen = new Set<string>();
  svc.ipFamilies.forEach((family, i) => {
    if (family !== 'IPv4' && family !== 'IPv6') push(['spec', 'ipFamilies', i], fieldError.notSupported(`spec.ipFamilies[${i}]`, family, ['IPv4', 'IPv6']));
    if (seen.has(family)) push(['spec', 'ipFamilies', i], fieldError.duplicate(`spec.ipFamilies[${i}]`, family));
    seen.add(family);
  });
  if (svc.ipFamilyPolicy !== undefined && !['PreferDualStack', 'RequireDualStack', 'SingleStack'].includes(svc.ipFamilyPolicy)) {
    push(['spec', 'ipFamilyPolicy'], fieldError.notSupported('spec.ipFamilyPolicy', svc.ipFamilyPolicy, ['PreferDualStack', 'RequireDualStack', 'SingleStack']));
  }
  let invalidIPs = false;
  svc.clusterIPs.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (svc.clusterIPs.length > 1) {
        invalidIPs = true;
        push(['spec', 'clusterIPs'], fieldError.invalid('spec.clusterIPs', svc.clusterIPs, "'None' must be the first and only value"));
      }
      return;
    }
    for (const msg of isValidIP(ip)) {
      invalidIPs = true;
      push(['spec', 'clusterIPs', i], fieldError.invalid(`spec.clusterIPs[${i}]`, ip, msg));
    }
  });
  if (svc.clusterIPs.length > 2) push(['spec', 'clusterIPs'], fieldError.invalid('spec.clusterIPs', svc.clusterIPs, 'may only hold up to 2 values'));
  // A bad IP or a misplaced None would skew the checks below.
  if (invalidIPs) return errors;
  if (svc.clusterIPs.length > 1) {
    // netutils.IsDualStackIPStrings: at least one IP of each family.
    const families = svc.clusterIPs.map((ip) => ipFamily(ip));
    const dualStack = families.includes('IPv4') && families.includes('IPv6');
    if (!dualStack) push(['spec', 'clusterIPs'], fieldError.invalid('spec.clusterIPs', svc.clusterIPs, 'may specify no more than one IP for each IP family'));
  }
  if (svc.clusterIP !== 'None' && svc.clusterIPs.length > 0 && svc.ipFamilies.length > 0) {
    svc.clusterIPs.forEach((ip, i) => {
      const family = svc.ipFamilies[i];
      if (family === undefined) return;
      const v6 = ipFamily(ip) === 'IPv6';
      if (family === 'IPv4' && v6) push(['spec', 'clusterIPs', i], fieldError.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``));
      if (family === 'IPv6' && !v6) push(['spec', 'clusterIPs', i], fieldError.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``));
    });
  }
  return errors;
}

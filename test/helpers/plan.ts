// plan.ts (test helper) — the planner's options as `portlab up` defaults them, for tests of the pure layers.
import { clusterConfig } from '../../src/model/addresses.js';
import type { PlanOptions } from '../../src/model/desired-state.js';

export const PLAN: PlanOptions = {
  nodeAddress: '127.0.0.1',
  nodes: 1,
  nodeCidr: '127.0.1.0/24',
  serviceCidr: '127.10.0.0/16',
  podCidr: '127.244.0.0/16',
  loadBalancerCidr: '127.20.0.0/16',
  addresses: 'distinct',
  mode: 'auto',
  standins: 'auto',
  nodePortRange: [30000, 32767],
  balance: 'random',
  nodeportHop: 'via-service',
  idleTimeoutMs: 0,
};

/** CLUSTER is what the API server's allocators know of the cluster, for PLAN. */
export const CLUSTER = clusterConfig(PLAN.serviceCidr, PLAN.nodePortRange);

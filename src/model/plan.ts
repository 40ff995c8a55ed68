// plan.ts — manifests on disk → desired state, in calls shared by `up`, `routes`, `validate`, reloads and overrides.
import { manifestError, parseManifests } from '../manifest/load.js';
import type { Manifests } from '../manifest/objects.js';
import { readSources } from '../manifest/sources.js';
import { clusterConfig } from './addresses.js';
import { buildDesiredState, type DesiredState, type Overrides, type PlanOptions } from './desired-state.js';

export interface PlanInput extends PlanOptions {
  files: string[];
  /** readTimeoutMs is how long stdin or a pipe may stay silent (--read-timeout). */
  readTimeoutMs?: number;
}

/** loadManifests reads and validates the manifests. It throws PORTLAB_MANIFEST_INVALID with every problem. */
export async function loadManifests(input: PlanInput, readStdin?: () => Promise<string>): Promise<Manifests> {
  const sources = await readSources(input.files, readStdin, input.readTimeoutMs);
  const { manifests, problems } = parseManifests(sources, clusterConfig(input.serviceCidr, input.nodePortRange));
  if (!manifests) throw manifestError(problems);
  return manifests;
}

/** planState resolves manifests into the desired state, given the previous state and the run-time overrides. */
export function planState(manifests: Manifests, input: PlanOptions, previous?: DesiredState, overrides?: Overrides): DesiredState {
  const built = buildDesiredState(manifests, input, previous, overrides);
  if (!built.state) throw manifestError(built.problems);
  return built.state;
}

/** planFromFiles is loadManifests then planState: the one-shot commands (routes, validate) use it. */
export async function planFromFiles(input: PlanInput, previous?: DesiredState, readStdin?: () => Promise<string>): Promise<DesiredState> {
  return planState(await loadManifests(input, readStdin), input, previous);
}

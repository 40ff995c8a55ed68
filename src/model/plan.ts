// plan.ts — manifests on disk → desired state, in one call shared by `up`, `routes`, `validate` and reloads.
import { manifestError, parseManifests } from '../manifest/load.js';
import { readSources } from '../manifest/sources.js';
import { buildDesiredState, type DesiredState, type PlanOptions } from './desired-state.js';

export interface PlanInput extends Omit<PlanOptions, 'previous'> {
  files: string[];
  nodePortRange: [number, number];
}

/** planFromFiles reads, validates and resolves the manifests. It throws PORTLAB_MANIFEST_INVALID with every problem. */
export async function planFromFiles(input: PlanInput, previous?: DesiredState, readStdin?: () => Promise<string>): Promise<DesiredState> {
  const sources = await readSources(input.files, readStdin);
  const { manifests, problems } = parseManifests(sources, { nodePortRange: input.nodePortRange });
  if (!manifests) throw manifestError(problems);
  const built = buildDesiredState(manifests, { ...input, previous });
  if (!built.state) throw manifestError(built.problems);
  return built.state;
}

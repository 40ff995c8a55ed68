// load.ts — the manifest layer's front door: sources → documents → validated, defaulted objects. Opens no sockets.
import { PortlabError } from '../errors.js';
import { parseDocuments } from './documents.js';
import type { Manifests } from './objects.js';
import { formatProblem, type Problem } from './problems.js';
import type { Source } from './sources.js';
import { validateObjects, type ValidateOptions } from './validate.js';

/** parseManifests runs every check that needs only the text, and returns all problems rather than the first. */
export function parseManifests(sources: Source[], options: ValidateOptions): { manifests?: Manifests; problems: Problem[] } {
  const { objects, problems, emptySources } = parseDocuments(sources);
  for (const file of emptySources) problems.push({ where: `${file}:1:1`, message: 'error: no objects passed to apply (the file is empty)' });
  const validated = validateObjects(objects, options);
  problems.push(...validated.problems);
  if (problems.length === 0 && validated.manifests.services.length === 0) {
    const files = sources.map((s) => s.file).join(', ');
    problems.push({ where: `${sources[0]?.file ?? '<none>'}:1:1`, message: `error: no Service in ${files}: portlab forwards Services, so add an object with kind: Service` });
  }
  if (problems.length > 0) return { problems };
  return { manifests: validated.manifests, problems };
}

/** manifestError wraps problems into the one error the CLI prints, one problem per line. */
export function manifestError(problems: Problem[]): PortlabError {
  const lines = problems.map(formatProblem);
  const count = problems.length === 1 ? '1 error' : `${problems.length} errors`;
  return new PortlabError('PORTLAB_MANIFEST_INVALID', `the manifests are invalid (${count}); nothing was started`, { details: lines });
}

// sources.ts — reads the -f inputs (files, directories, stdin) into text, as `kubectl apply -f` does.
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PortlabError } from '../errors.js';

/** Source is one manifest file's text and the name errors will show for it. */
export interface Source {
  file: string;
  text: string;
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** readSources expands each -f argument. A directory contributes its .yaml/.yml/.json files (not recursive, like kubectl without -R). */
export async function readSources(inputs: string[], readStdin: () => Promise<string> = readAllStdin): Promise<Source[]> {
  const sources: Source[] = [];
  for (const input of inputs) {
    if (input === '-') {
      sources.push({ file: '<stdin>', text: await readStdin() });
      continue;
    }
    let info;
    try {
      info = await stat(input);
    } catch (err) {
      throw new PortlabError('PORTLAB_MANIFEST_UNREADABLE', `${input}: cannot read manifest: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    if (info.isDirectory()) {
      const names = (await readdir(input)).filter((n) => MANIFEST_EXTENSIONS.has(path.extname(n))).sort();
      if (names.length === 0) {
        throw new PortlabError('PORTLAB_MANIFEST_UNREADABLE', `${input}: the directory has no .yaml, .yml or .json files`);
      }
      const files = names.map((name) => path.join(input, name));
      const texts = await Promise.all(files.map((file) => readFile(file, 'utf8')));
      files.forEach((file, i) => sources.push({ file, text: texts[i]! }));
    } else {
      sources.push({ file: input, text: await readFile(input, 'utf8') });
    }
  }
  return sources;
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

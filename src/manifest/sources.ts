// sources.ts — reads the -f inputs (files, directories, stdin) into text, as `kubectl apply -f` does.
import { spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import path from 'node:path';
import { PortlabError } from '../errors.js';

/** Source is one manifest file's text and the name errors will show for it. */
export interface Source {
  file: string;
  text: string;
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** READ_IDLE_MS is how long stdin or a pipe may stay silent before portlab stops waiting for the end of the manifest. */
export const READ_IDLE_MS = 30_000;

/** readSources expands each -f argument. A directory contributes its .yaml/.yml/.json files (not recursive, like kubectl without -R). */
export async function readSources(inputs: string[], readStdin?: () => Promise<string>, idleMs = READ_IDLE_MS): Promise<Source[]> {
  readStdin ??= () => readStream(process.stdin, '-', idleMs);
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
    } else if (info.isFIFO() || info.isCharacterDevice() || info.isSocket()) {
      // A pipe ends only when its writer closes it: wait for that, but not for ever. `cat` does the blocking open and
      // read in a process of its own, which can be killed; a blocked read in Node's thread pool would hold up its exit.
      const cat = spawn('cat', ['--', input], { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        sources.push({ file: input, text: await readStream(cat.stdout, input, idleMs) });
      } finally {
        cat.kill();
      }
    } else {
      sources.push({ file: input, text: await readFile(input, 'utf8') });
    }
  }
  return sources;
}

function unreadable(input: string, why: string): PortlabError {
  return new PortlabError('PORTLAB_MANIFEST_UNREADABLE', `${input === '-' ? 'stdin' : input}: ${why}`, {
    fix: input === '-' ? 'Pipe the manifests in and close the pipe (`kubectl get svc -o yaml | portlab routes -f -`), or end typed input with Ctrl-D, or give -f FILE.' : 'Give a regular file, or make the writer close the pipe when it is done.',
  });
}

/** readStream reads to the end, and gives up with a clear error after idleMs with no data. */
export function readStream(stream: Readable, input: string, idleMs: number): Promise<string> {
  if (input === '-' && (stream as { isTTY?: boolean }).isTTY) return Promise.reject(unreadable(input, 'stdin is a terminal, not a manifest'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stream.destroy();
        reject(unreadable(input, `no end of input after ${idleMs / 1000}s without data`));
      }, idleMs);
    };
    arm();
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      arm();
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(unreadable(input, (err as NodeJS.ErrnoException).code ?? String(err)));
    });
  });
}

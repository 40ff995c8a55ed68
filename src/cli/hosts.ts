// hosts.ts — --write-hosts: cluster IP names in /etc/hosts between markers, removed again on exit.
import { readFile, writeFile } from 'node:fs/promises';
import { PortlabError } from '../errors.js';

const BEGIN = '# BEGIN portlab (removed when portlab exits)';
const END = '# END portlab';

function strip(text: string): string {
  const re = new RegExp(`\\n?${BEGIN.replace(/[()]/g, '\\$&')}[\\s\\S]*?${END}\\n?`, 'g');
  return text.replace(re, '\n').replace(/\n{3,}$/, '\n\n');
}

export async function addHosts(file: string, lines: string[]): Promise<void> {
  try {
    const text = strip(await readFile(file, 'utf8'));
    await writeFile(file, `${text.replace(/\n*$/, '\n')}${BEGIN}\n${lines.join('\n')}\n${END}\n`);
  } catch (err) {
    throw new PortlabError('PORTLAB_HOSTS_NOT_WRITABLE', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

export async function removeHosts(file: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  await writeFile(file, strip(text).replace(/\n*$/, '\n'));
}

// tools.ts — find the system's own nft, iptables-restore and conntrack: an npm package may put a different `nft`
// (@vercel/nft) first on the PATH of npm scripts.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const SYSTEM_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** systemTool is the absolute path of a system command, or undefined when it is not installed. */
export function systemTool(name: string): string | undefined {
  const fromPath = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !d.includes('node_modules'));
  for (const dir of [...SYSTEM_DIRS, ...fromPath]) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

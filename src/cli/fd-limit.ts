// fd-limit.ts — raise the open-file soft limit to the hard limit where allowed, and say what it is.
// Node has no setrlimit; util-linux's prlimit(1) sets another process's limits, and a process may raise its own
// soft limit up to its hard limit, so portlab asks prlimit to do it for its own PID.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface FdLimit {
  soft: number;
  hard: number;
  raisedFrom?: number;
}

function readLimit(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line && /Max open files\s+(\S+)\s+(\S+)/.exec(line);
    if (!m) return undefined;
    const num = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
    return { soft: num(m[1]!), hard: num(m[2]!) };
  } catch {
    return undefined; // not Linux
  }
}

/** raiseFdLimit returns the limit in force after trying to raise the soft limit to the hard one. */
export function raiseFdLimit(): FdLimit | undefined {
  const before = readLimit();
  if (!before || before.soft >= before.hard || !Number.isFinite(before.hard)) return before;
  spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:${before.hard}`], { stdio: 'ignore', timeout: 2000 });
  const after = readLimit() ?? before;
  return after.soft > before.soft ? { ...after, raisedFrom: before.soft } : after;
}

/** fdBudgetWarning says when --max-connections across every listener could exhaust the descriptors. */
export function describeFdLimit(limit: FdLimit | undefined, listeners: number, maxConnections?: number, budget?: number): string {
  if (!limit) return 'fd limit: unknown on this system';
  const raised = limit.raisedFrom !== undefined ? ` (raised from ${limit.raisedFrom})` : limit.soft < limit.hard ? ' (could not be raised: install util-linux prlimit, or ulimit -n)' : '';
  // Each forwarded connection holds two descriptors per hop.
  const perListener = maxConnections ? ` · --max-connections ${maxConnections} × ${listeners} listeners × 2 fds = ${maxConnections * listeners * 2}${maxConnections * listeners * 2 > limit.soft ? ' exceeds the limit: lower --max-connections' : ''}` : '';
  const whole = budget === undefined ? '' : ` · at most ${budget} connections in all (3 fds each); beyond that, new ones are reset and counted`;
  return `fd limit: ${limit.soft}${raised}${perListener}${whole}`;
}

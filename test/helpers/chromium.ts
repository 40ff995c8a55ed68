// chromium.ts (test helper) — Debian's Chromium, as the browser tests and a user's shell run it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { ROOT } from './portlab.js';

export const CHROMIUM = process.env.PORTLAB_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'artifacts');

/** browserMissing fails the test in CI when there is no Chromium, and passes it with a note elsewhere. */
export function browserMissing(t: ExecutionContext): boolean {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI) t.fail(`no browser at ${CHROMIUM}: .ci/run installs Debian's chromium`);
  else {
    t.log(`no browser at ${CHROMIUM}; install it with: apt-get install -y chromium`);
    t.pass();
  }
  return true;
}

type Spawner = (command: string, args: string[]) => ChildProcess;
const direct: Spawner = (command, args) => spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * headless runs Chromium as a user would from a shell (`--headless --virtual-time-budget=3000`), and gives what it
 * printed. `via` starts it elsewhere, such as in a test's network namespace.
 */
export async function headless(args: string[], via: Spawner = direct, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // A profile of its own: two Chromiums on one profile wait for each other's lock.
  const profile = await mkdtemp(path.join(tmpdir(), 'portlab-chromium-'));
  const flags = ['--headless', '--no-sandbox', `--user-data-dir=${profile}`, '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--virtual-time-budget=3000'];
  return new Promise((resolve) => {
    const child = via(CHROMIUM, [...flags, ...args]);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      clearTimeout(timer);
      void rm(profile, { recursive: true, force: true }).then(() => resolve({ code, stdout, stderr }));
    });
  });
}

// cli.ts (test helper) — run the real `portlab` binary as a child process, and stop only the PIDs we started.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { CLI, ROOT } from './portlab.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** runCli runs a command to completion (validate, routes, a failing up) with a time bound. */
export function runCli(args: string[], input?: string, timeoutMs = 20_000, prefix: string[] = []): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [command, ...rest] = [...prefix, process.execPath, ...NODE_FLAGS, CLI, ...args] as [string, ...string[]];
    const child = spawn(command, rest, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portlab ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

export interface RunningCli {
  child: ChildProcess;
  output(): string;
  errors(): string;
  /** stop sends SIGTERM to this child only, and resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  rssBytes(): number;
}

/**
 * startCli runs `portlab up ...` and resolves once it prints "ready:". A prefix such as
 * `prlimit --nofile=512:8192` must exec the command, so the child PID stays portlab's own. viaShebang runs the CLI file
 * itself, as `npx portlab` does.
 */
export function startCli(args: string[], timeoutMs = 20_000, prefix: string[] = [], viaShebang = false): Promise<RunningCli> {
  const node = viaShebang ? [] : [process.execPath, ...NODE_FLAGS];
  const [command, ...rest] = [...prefix, ...node, CLI, ...args] as [string, ...string[]];
  return whenReady(spawn(command, rest, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }), timeoutMs);
}

/** whenReady resolves once a started `portlab up` prints "ready:", and rejects if it exits or times out first. */
export function whenReady(child: ChildProcess, timeoutMs: number): Promise<RunningCli> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const api: RunningCli = {
      child,
      output: () => stdout,
      errors: () => stderr,
      stop: async (signal = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
      rssBytes: () => {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
      },
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portlab did not get ready in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('ready:')) {
        clearTimeout(timer);
        resolve(api);
      }
    });
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`portlab exited with ${code} before it was ready\n${stdout}\n${stderr}`));
    });
  });
}

// processes.ts — the benchmark's child processes (backend, portlab, baselines, HAProxy, nginx): start, wait, stop by PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDR, BENCH_PORTS, benchManifest } from './plan.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.resolve(HERE, '../cli/main.js');

export interface Child {
  name: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

const started: Child[] = [];
/** Config directories made for HAProxy and nginx; stopAll removes them. */
const tempDirs: string[] = [];

export interface ChildOptions {
  readyWord?: string;
  timeoutMs?: number;
  /**
   * stdoutFile takes the child's standard output (portlab's traffic log) as `> FILE` would, and readiness is read
   * from the file. A pipe would make this process, the load generator, read every log line during the rounds it times.
   */
  stdoutFile?: string;
}

/** startChild spawns a process and resolves when its standard output contains the ready word ("ready"). */
export function startChild(name: string, command: string, args: string[], options: ChildOptions = {}): Promise<Child> {
  const { readyWord = 'ready', timeoutMs = 15_000, stdoutFile } = options;
  return new Promise((resolve, reject) => {
    const fd = stdoutFile ? openSync(stdoutFile, 'w') : undefined;
    const proc = spawn(command, args, { stdio: ['ignore', fd ?? 'pipe', 'pipe'] });
    if (fd !== undefined) closeSync(fd); // the child holds its own copy
    let out = '';
    let err = '';
    let poll: NodeJS.Timeout | undefined;
    const child: Child = {
      name,
      proc,
      stop: () =>
        new Promise((res) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return res();
          proc.once('exit', () => res());
          proc.kill('SIGTERM');
          setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
        }),
    };
    const ready = () => {
      clearTimeout(timer);
      clearInterval(poll);
      started.push(child);
      resolve(child);
    };
    const timer = setTimeout(() => {
      clearInterval(poll);
      proc.kill('SIGKILL');
      reject(new Error(`${name} did not start in ${timeoutMs} ms\n${out}\n${err}`));
    }, timeoutMs);
    if (stdoutFile) {
      poll = setInterval(() => {
        out = readFileSync(stdoutFile, 'utf8');
        if (out.includes(readyWord)) ready();
      }, 25);
    } else {
      proc.stdout!.on('data', (d) => {
        out += d;
        if (out.includes(readyWord)) {
          proc.stdout!.removeAllListeners('data');
          proc.stdout!.resume(); // keep draining: a full pipe would stall the child
          ready();
        }
      });
    }
    proc.stderr!.on('data', (d) => (err += d));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`${name} exited with ${code}\n${out}\n${err}`));
    });
  });
}

/** stopAll stops every child this process started, and only those. */
export async function stopAll(): Promise<void> {
  await Promise.all(started.splice(0).map((c) => c.stop()));
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** cpuAndPeakRss reads a child's CPU seconds (user+system) and peak RSS from /proc. */
export function cpuAndPeakRss(pid: number): { cpuSeconds: number; peakRssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100 per second on Linux)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, peakRssMiB: hwm / 1024 };
}

/**
 * cpuNanos is the CPU time a child has used, summed over its threads from /proc/PID/task/TID/schedstat: nanoseconds,
 * where /proc/PID/stat counts 10 ms ticks, too coarse for the CPU of one slice of requests.
 */
export function cpuNanos(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

/** waitListening polls until something accepts on host:port. */
async function waitListening(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const ports = Object.values(BENCH_PORTS);

/** startHaproxy runs HAProxy in TCP mode in the foreground, if it is installed; otherwise says why not. */
export async function startHaproxy(): Promise<Child | string> {
  const bin = which('haproxy');
  if (!bin) return 'HAProxy is not installed (apt-get install haproxy)';
  const dir = await mkdtemp(path.join(tmpdir(), 'portlab-bench-haproxy-'));
  tempDirs.push(dir);
  const cfg = [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    ...ports.flatMap((p) => [`listen p${p}`, `  bind ${ADDR.haproxy}:${p}`, `  server backend ${ADDR.backend}:${p}`]),
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, `${cfg}\n`);
  const proc = spawn(bin, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: Child = { name: 'haproxy', proc, stop: () => new Promise((res) => (proc.exitCode !== null ? res() : (proc.once('exit', () => res()), proc.kill('SIGTERM')))) };
  started.push(child);
  await waitListening(ADDR.haproxy, BENCH_PORTS.echo);
  return child;
}

/** startNginx runs nginx's stream proxy in the foreground, if nginx and its stream module are installed. */
export async function startNginx(): Promise<Child | string> {
  const bin = which('nginx');
  if (!bin) return 'nginx is not installed (apt-get install nginx-light libnginx-mod-stream)';
  const module = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find((m) => existsSync(m));
  const dir = await mkdtemp(path.join(tmpdir(), 'portlab-bench-nginx-'));
  tempDirs.push(dir);
  const conf = [
    module ? `load_module ${module};` : '',
    'daemon off;',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log;`,
    'events { worker_connections 10000; }',
    'stream {',
    ...ports.map((p) => `  server { listen ${ADDR.nginx}:${p}; proxy_pass ${ADDR.backend}:${p}; }`),
    '}',
  ].join('\n');
  const file = path.join(dir, 'nginx.conf');
  await writeFile(file, `${conf}\n`);
  const test = spawnSync(bin, ['-t', '-p', dir, '-c', file], { encoding: 'utf8' });
  if (test.status !== 0) return `nginx has no stream module here (apt-get install libnginx-mod-stream): ${test.stderr.split('\n')[0]}`;
  const proc = spawn(bin, ['-p', dir, '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: Child = { name: 'nginx', proc, stop: () => new Promise((res) => (proc.exitCode !== null ? res() : (proc.once('exit', () => res()), proc.kill('SIGQUIT')))) };
  started.push(child);
  await waitListening(ADDR.nginx, BENCH_PORTS.echo);
  return child;
}

/**
 * benchWorkspace is a run's own temp directory with the bench manifest in it. Until close(), Ctrl-C stops every child
 * first; close() stops them and removes the directory.
 */
export async function benchWorkspace(prefix: string): Promise<{ dir: string; manifest: string; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  const manifest = path.join(dir, 'bench.yml');
  await writeFile(manifest, benchManifest());
  const onSignal = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  return {
    dir,
    manifest,
    close: async () => {
      process.off('SIGINT', onSignal);
      await stopAll();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

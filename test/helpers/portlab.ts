// portlab.ts (test helper) — start a real portlab on a loopback range of the test's own, and close it in finally.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions } from '../../src/cli/options.js';
import { TrafficLog, type FlowRecord } from '../../src/observe/log.js';
import { Portlab } from '../../src/runtime.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');
export const SEED = path.join(FIXTURES, 'my-service.yml');
export const MY_APP = path.join(FIXTURES, 'my-app.yml');

/**
 * Range is a test's own slice of 127.0.0.0/8: 127.N.x.y. Tests keep the real port numbers (30000, 8080, 5000) and
 * differ only in addresses, so ava can run them in parallel. Each test in the suite uses a different N (100-199).
 */
export interface Range {
  n: number;
  node: string;
  serviceCidr: string;
  podCidr: string;
  lbCidr: string;
  nodeCidr: string;
  admin: string;
  /** client is an address tests bind their client sockets to, so "the client portlab saw" is checkable. */
  client: string;
  /** backend returns an address for a test's own backend process, outside the pod range portlab allocates. */
  backend(i?: number): string;
  service(i?: number): string;
  pod(i?: number): string;
  args: string[];
}

export function range(n: number): Range {
  const r = {
    n,
    node: `127.${n}.0.1`,
    serviceCidr: `127.${n}.10.0/24`,
    podCidr: `127.${n}.244.0/24`,
    lbCidr: `127.${n}.20.0/24`,
    nodeCidr: `127.${n}.1.0/24`,
    admin: `127.${n}.0.250:10249`,
    client: `127.${n}.0.77`,
    backend: (i = 1) => `127.${n}.50.${i}`,
    service: (i = 1) => `127.${n}.10.${i}`,
    pod: (i = 1) => `127.${n}.244.${i}`,
  };
  return {
    ...r,
    args: ['--node-address', r.node, '--service-cidr', r.serviceCidr, '--pod-cidr', r.podCidr, '--lb-cidr', r.lbCidr, '--node-cidr', r.nodeCidr, '--admin', r.admin],
  };
}

export interface Running {
  portlab: Portlab;
  records: FlowRecord[];
  close(): Promise<void>;
}

/** startPortlab runs `portlab up` in-process with the given files and flags, collecting its log as records. */
export async function startPortlab(r: Range, files: string[], extra: string[] = []): Promise<Running> {
  const argv = ['up', ...files.flatMap((f) => ['-f', f]), ...r.args, '--drain-timeout', '1s', ...extra];
  const options = parseOptions(argv);
  const records: FlowRecord[] = [];
  // One write may carry several lines: the log sends its lines in batches, as bytes.
  const sink = {
    write: (bytes: Buffer | string) => {
      for (const line of String(bytes).split('\n')) if (line) records.push(JSON.parse(line) as FlowRecord);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  const { portlab } = await Portlab.start(options, new TrafficLog('json', sink, false));
  return { portlab, records, close: () => portlab.close(200) };
}

/** tempManifest writes YAML to a fresh directory and returns the file path; cleanup removes the directory. */
export async function tempManifest(yaml: string, name = 'manifest.yml'): Promise<{ file: string; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portlab-test-'));
  const file = path.join(dir, name);
  await writeFile(file, yaml);
  return { file, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** waitFor polls until check returns a truthy value, within a bound (kube-proxy's waitForClosedPortTCP habit). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** connectionOutcome connects and reports how the connection ended: 'refused', 'reset', or 'open'. */
export function connectionOutcome(host: string, port: number, waitMs = 300): Promise<'refused' | 'reset' | 'open' | 'end'> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('open');
    }, waitMs);
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'reset');
    });
    s.on('end', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('end');
    });
  });
}

/** accepts is true when something listens on host:port: the kernel completes the handshake, whatever comes after. */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** isClosed is true when nothing listens on host:port any more. */
export async function isClosed(host: string, port: number): Promise<boolean> {
  return (await connectionOutcome(host, port, 200)) === 'refused';
}

/**
 * endOrReset tells how a connection ended. libuv reports a reset that follows a partial read as a clean EOF, so on
 * 'end' it writes zero bytes: after a FIN that succeeds (half-close), after a reset it fails with ECONNRESET/EPIPE.
 * The socket must be made with allowHalfOpen: true.
 */
export function endOrReset(socket: net.Socket): Promise<{ how: string; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ how: err.code ?? 'error', bytes }));
    socket.on('end', () => {
      socket.write(Buffer.alloc(0), (err) => {
        resolve({ how: err ? ((err as NodeJS.ErrnoException).code ?? 'error') : 'clean end', bytes });
        socket.destroy();
      });
    });
  });
}

/**
 * exchange sends `payload`, half-closes (unless halfClose is false: Node's HTTP server drops a request whose client
 * half-closes at once), and collects everything until the peer ends, or fails after timeoutMs.
 */
export function exchange(host: string, port: number, payload: Buffer | string, opts: { halfClose?: boolean; timeoutMs?: number } = {}): Promise<Buffer> {
  const { halfClose = true, timeoutMs = 30_000 } = opts;
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`${host}:${port} did not end in ${timeoutMs} ms after ${Buffer.concat(chunks).length} bytes`)));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(chunks));
    });
    s.on('error', reject);
    if (halfClose) s.end(payload);
    else s.write(payload);
  });
}

/** statusLine sends raw bytes and returns the first line of the answer, or 'reset' / 'closed' when none came. */
export function statusLine(host: string, port: number, payload: string | Buffer, opts: { keepOpen?: boolean; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('error', () => resolve(data.split('\r\n')[0] || 'reset'));
    s.on('close', () => resolve(data.split('\r\n')[0] || 'closed without answer'));
    s.setTimeout(opts.timeoutMs ?? 8000, () => s.destroy());
    if (opts.keepOpen) s.write(payload);
    else s.end(payload);
  });
}

/** whoAnswers makes one new TCP connection, sends a GET, and returns the pod name from the JSON, or 'no answer'. */
export function whoAnswers(host: string, port: number, localAddress?: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, localAddress });
    let data = '';
    s.setTimeout(timeoutMs, () => {
      s.destroy();
      resolve('no answer');
    });
    s.on('data', (d) => (data += d));
    s.on('end', () => {
      const body = data.slice(data.indexOf('\r\n\r\n') + 4);
      try {
        resolve((JSON.parse(body) as { pod: string }).pod);
      } catch {
        reject(new Error(`not JSON: ${data.slice(0, 200)}`));
      }
    });
    s.on('error', reject);
    s.end(`GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

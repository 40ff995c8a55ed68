// netns.ts (test helper) — a private network namespace a test creates (unshare -n), for kernel rules that must never
// touch the machine's own tables. Commands run in it through nsenter; the namespace ends with its holder process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { run, type RunResult } from '../../src/kernel/plane.js';
import { systemTool } from '../../src/kernel/tools.js';
import { whenReady, type RunningCli } from './cli.js';
import { CLI, ROOT } from './portlab.js';

/** canUseNetns: unshare, nsenter, ip and the rule tools are here, and this process may create a namespace. */
export function netnsSupport(tools: string[]): string | undefined {
  for (const t of ['unshare', 'nsenter', 'ip', ...tools]) if (!systemTool(t)) return `${t} is not installed`;
  const probe = spawnSync('unshare', ['-n', 'true']);
  return probe.status === 0 ? undefined : `unshare -n failed: ${String(probe.stderr).trim()}`;
}

export class Netns {
  private constructor(private readonly holder: ChildProcess) {}

  /** create starts a namespace with its loopback up, and conntrack byte counts on (a per-namespace setting). */
  static async create(): Promise<Netns> {
    const holder = spawn('unshare', ['-n', 'sleep', '600'], { stdio: 'ignore' });
    const ns = new Netns(holder);
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let i = 0; i < 50 && (await ns.run('ip', ['link', 'set', 'lo', 'up'])).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    await ns.run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1']);
    return ns;
  }

  private args(cmd: string, args: string[]): string[] {
    return ['-t', String(this.holder.pid), '-n', '--', cmd, ...args];
  }

  /** run runs a command in the namespace to its end; a system tool by its own path, not one an npm package shadows. */
  run(cmd: string, args: string[], input = '', timeoutMs = 20_000): Promise<RunResult> {
    const resolved = cmd.includes('/') ? cmd : (systemTool(cmd) ?? cmd);
    return run('nsenter', this.args(resolved, args), input, timeoutMs, ROOT);
  }

  /** spawn starts a command in the namespace and leaves it running, its stdin open, for the test to talk to. */
  spawn(cmd: string, args: string[]): ChildProcess {
    return spawn('nsenter', this.args(cmd, args), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** node runs a Node.js script in the namespace and parses the JSON it prints. */
  async node<T>(script: string, timeoutMs = 20_000): Promise<T> {
    const r = await this.run(process.execPath, ['--input-type=module', '-e', script], '', timeoutMs);
    if (r.code !== 0) throw new Error(`script failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** portlab starts `portlab up` in the namespace and resolves once it is ready. */
  portlab(args: string[], timeoutMs = 20_000): Promise<RunningCli> {
    return whenReady(spawn('nsenter', this.args(process.execPath, [...NODE_FLAGS, CLI, 'up', ...args]), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }), timeoutMs);
  }


  /**
   * client makes a second namespace joined to this one by a veth pair: this side 10.99.0.1, the client 10.99.0.2. A
   * packet from it is not local to the node, as a client elsewhere on the network would be. route_localnet lets the
   * node DNAT such packets to its 127.x pods.
   */
  async client(): Promise<Netns> {
    const other = await Netns.create();
    const pid = String(other.holder.pid);
    const steps: [string, string[]][] = [
      ['ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', pid]],
      ['ip', ['addr', 'add', '10.99.0.1/24', 'dev', 'veth0']],
      ['ip', ['link', 'set', 'veth0', 'up']],
      ['sysctl', ['-qw', 'net.ipv4.conf.all.route_localnet=1']],
      ['sysctl', ['-qw', 'net.ipv4.conf.veth0.route_localnet=1']],
    ];
    for (const [cmd, args] of steps) {
      const r = await this.run(cmd, args);
      if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    }
    for (const [cmd, args] of [
      ['ip', ['addr', 'add', '10.99.0.2/24', 'dev', 'veth1']],
      ['ip', ['link', 'set', 'veth1', 'up']],
    ] as [string, string[]][]) {
      const r = await other.run(cmd, args);
      if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    }
    return other;
  }

  close(): void {
    this.holder.kill('SIGKILL');
  }
}

/** HTTP_GETS is a script body: GET each URL once on a new connection and print [{status, pod} | {error}]. */
export function getsScript(urls: string[], timeoutMs = 2000, localAddress?: string): string {
  return `
import http from 'node:http';
const urls = ${JSON.stringify(urls)};
const one = (url) => new Promise((resolve) => {
  const req = http.get(url, { agent: false, timeout: ${timeoutMs}${localAddress ? `, localAddress: ${JSON.stringify(localAddress)}` : ''} }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => { let pod; try { pod = JSON.parse(body).pod; } catch {} resolve({ status: res.statusCode, pod }); });
  });
  req.on('timeout', () => { req.destroy(); resolve({ error: 'timeout' }); });
  req.on('error', (e) => resolve({ error: e.code ?? String(e) }));
});
const out = [];
for (const u of urls) out.push(await one(u));
process.stdout.write(JSON.stringify(out));
`;
}

// iptables-plane.ts — kube-proxy's iptables rules in the kernel, in chains of portlab's own (PORTLAB-*). Each apply is
// one `iptables-restore --noflush`: the top-level chains whole, and of the Service chains only those that changed,
// with -X for those that went, as kube-proxy's partial syncs do.
import type { DesiredState } from '../model/state.js';
import { iptablesRestore, jumpRules } from '../rules/iptables.js';
import { proxyView, type ProxyNode } from '../rules/view.js';
import { CHAIN_PREFIX, kernelError, run, type KernelPlane } from './plane.js';

interface Tables {
  /** chains per table, in order, with their rules. */
  [table: string]: Map<string, string[]>;
}

function parse(text: string): Tables {
  const tables: Tables = {};
  let current: Map<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) tables[line.slice(1)] = current = new Map();
    else if (line.startsWith(':') && current) current.set(line.slice(1).split(' ')[0]!, []);
    else if (line.startsWith('-A ') && current) current.get(line.split(' ')[1]!)?.push(line);
  }
  return tables;
}

const SERVICE_CHAIN = new RegExp(`^${CHAIN_PREFIX}(SVC|SVL|EXT|FW|SEP)-`);

export class IptablesPlane implements KernelPlane {
  readonly mode = 'iptables' as const;
  private applied: Tables = {};
  private started = false;

  constructor(
    private readonly restore: string,
    private readonly iptables: string,
  ) {}

  private jumps(): { table: string; from: string; args: string[] }[] {
    return jumpRules().map((j) => ({ table: j.table, from: j.from, args: j.args.map((a) => a.replaceAll('"', '').replace(/^KUBE-/, CHAIN_PREFIX)) }));
  }

  async apply(state: DesiredState, node: ProxyNode): Promise<{ durationMs: number; changed: number }> {
    const started = performance.now();
    if (!this.started) await this.clear();
    const text = iptablesRestore(proxyView(state, node), node, {
      localhostNodePorts: true,
      nfacct: false,
      randomFully: false,
      nodePortAddresses: [node.ip],
      chainPrefix: CHAIN_PREFIX,
      // Every hop is on lo, where MASQUERADE finds no address to use: marked packets leave from the node address.
      masqueradeTarget: `SNAT --to-source ${node.ip}`,
    });
    const next = parse(text);
    const lines: string[] = [];
    let changed = 0;
    for (const [table, chains] of Object.entries(next)) {
      const before = this.applied[table] ?? new Map<string, string[]>();
      const head: string[] = [];
      const rules: string[] = [];
      for (const [chain, chainRules] of chains) {
        // An unchanged Service chain is left as it is; the top-level chains are written whole every time.
        if (this.started && SERVICE_CHAIN.test(chain) && before.get(chain)?.join('\n') === chainRules.join('\n')) continue;
        if (SERVICE_CHAIN.test(chain)) changed++;
        head.push(`:${chain} - [0:0]`);
        rules.push(...chainRules);
      }
      const gone = [...before.keys()].filter((c) => !chains.has(c));
      for (const c of gone) head.push(`:${c} - [0:0]`);
      for (const c of gone) rules.push(`-X ${c}`);
      changed += gone.length;
      lines.push(`*${table}`, ...head, ...rules, 'COMMIT');
    }
    const result = await run(this.restore, ['-w', '5', '--noflush'], `${lines.join('\n')}\n`);
    if (result.code !== 0) throw kernelError(`iptables-restore refused the rules: ${result.stderr.trim().split('\n').slice(0, 3).join(' / ')}`, 'The previous rules are still in place. This is a bug in portlab: please report it with the manifests.', 'PORTLAB_KERNEL_FAILED');
    if (!this.started) {
      // The jumps from the built-in chains, as kube-proxy ensures them: one -I each, after the chains exist.
      for (const j of this.jumps()) {
        // KUBE-FIREWALL exists only where nodePorts answer on 127.0.0.1.
        if (!next[j.table]?.has(j.args[j.args.length - 1]!)) continue;
        const r = await run(this.iptables, ['-w', '5', '-t', j.table, '-I', j.from, ...j.args]);
        if (r.code !== 0) throw kernelError(`iptables could not add a jump to ${j.from}: ${r.stderr.trim()}`, 'See the message; nothing else on the machine was changed.', 'PORTLAB_KERNEL_FAILED');
      }
    }
    this.applied = next;
    this.started = true;
    return { durationMs: performance.now() - started, changed };
  }

  /** clear removes portlab's jumps and chains, whatever run left them: each jump until none is left, then the chains. */
  private async clear(): Promise<void> {
    for (const j of this.jumps()) {
      for (let i = 0; i < 16; i++) {
        const r = await run(this.iptables, ['-w', '5', '-t', j.table, '-D', j.from, ...j.args]);
        if (r.code !== 0) break;
      }
    }
    for (const table of ['nat', 'filter']) {
      const saved = await run(this.iptables, ['-w', '5', '-t', table, '-S']);
      const chains = [...saved.stdout.matchAll(new RegExp(`^-N (${CHAIN_PREFIX}\\S+)`, 'gm'))].map((m) => m[1]!);
      if (chains.length === 0) continue;
      const input = [`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
      await run(this.restore, ['-w', '5', '--noflush'], input);
    }
  }

  async close(): Promise<void> {
    await this.clear();
    this.applied = {};
    this.started = false;
  }
}

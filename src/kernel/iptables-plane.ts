// iptables-plane.ts — kube-proxy's iptables rules in the kernel, in chains of portlab's own (PORTLAB-*). Each apply is
// one `iptables-restore --noflush`: the top-level chains whole, and of the Service chains only those that changed,
// with -X for those that went, as kube-proxy's partial syncs do.
import type { DesiredState } from '../model/state.js';
import { iptablesRestore, jumpRules } from '../rules/iptables.js';
import { proxyView, type ProxyNode } from '../rules/view.js';
import { applyTimeoutMs, CHAIN_PREFIX, counterTargets, kernelError, run, why, type CounterTargets, type KernelPlane, type RuleCounter } from './plane.js';

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
  private targets: CounterTargets = { byAddress: new Map(), byNodePort: new Map() };

  constructor(
    private readonly restore: string,
    private readonly iptables: string,
  ) {}

  /**
   * jumps are the rules that send the built-in chains to portlab's, as restore lines: -I each in the order kube-proxy
   * ensures them, so they end up in jumpRules' order. Only jumps to chains this ruleset has (KUBE-FIREWALL exists only
   * where nodePorts answer on 127.0.0.1).
   */
  private static jumps(table: string, chains: Map<string, string[]>): string[] {
    return jumpRules()
      .reverse()
      .filter((j) => j.table === table)
      .map((j) => ({ from: j.from, args: j.args.map((a) => a.replace(/^KUBE-/, CHAIN_PREFIX)) }))
      .filter((j) => chains.has(j.args[j.args.length - 1]!))
      .map((j) => `-I ${j.from} ${j.args.join(' ')}`);
  }

  async apply(state: DesiredState, node: ProxyNode): Promise<{ durationMs: number; changed: number }> {
    const started = performance.now();
    if (!this.started) await this.clear();
    const view = proxyView(state, node);
    const text = iptablesRestore(view, node, {
      localhostNodePorts: true,
      nfacct: false,
      randomFully: false,
      nodePortAddresses: [node.ip],
      chainPrefix: CHAIN_PREFIX,
      // Every hop is on lo, where MASQUERADE finds no address to use: marked packets leave from the node address.
      masqueradeTarget: `SNAT --to-source ${node.ip}`,
    });
    const next = parse(text);
    let lines: string[] = [];
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
        for (const rule of chainRules) rules.push(rule);
      }
      const gone = [...before.keys()].filter((c) => !chains.has(c));
      for (const c of gone) head.push(`:${c} - [0:0]`);
      for (const c of gone) rules.push(`-X ${c}`);
      changed += gone.length;
      // The first apply adds the jumps from the built-in chains in the same transaction, after the chains exist.
      const jumps = this.started ? [] : IptablesPlane.jumps(table, chains);
      // Built as one array literal: a call with 100,000 spread arguments would overflow the stack.
      lines = [...lines, `*${table}`, ...head, ...rules, ...jumps, 'COMMIT'];
    }
    const timeoutMs = applyTimeoutMs(lines.length);
    const result = await run(this.restore, ['-w', '5', '--noflush'], `${lines.join('\n')}\n`, timeoutMs);
    if (result.code !== 0) throw kernelError(`iptables-restore refused the rules: ${why(result, timeoutMs)}`, 'The previous rules are still in place. This is a bug in portlab: please report it with the manifests.', 'PORTLAB_KERNEL_FAILED');
    this.applied = next;
    this.targets = counterTargets(view);
    this.started = true;
    return { durationMs: performance.now() - started, changed };
  }

  /**
   * counters reads the dispatch rules' counters: the jumps in SERVICES (nat) and NODEPORTS, and the no-endpoints
   * REJECT and DROP rules in SERVICES and EXTERNAL-SERVICES (filter).
   */
  async counters(): Promise<RuleCounter[]> {
    if (!this.started) return [];
    const chains: [string, string][] = [['nat', 'SERVICES'], ['nat', 'NODEPORTS'], ['filter', 'SERVICES'], ['filter', 'EXTERNAL-SERVICES']];
    const listed = await Promise.all(chains.map(([table, chain]) => run(this.iptables, ['-w', '5', '-t', table, '-v', '-S', `${CHAIN_PREFIX}${chain}`])));
    const out: RuleCounter[] = [];
    listed.forEach((result, i) => {
      const chain = chains[i]![1];
      for (const line of result.stdout.split('\n')) {
        const proto = / -p (\w+)/.exec(line)?.[1];
        const dport = / --dport (\d+)/.exec(line)?.[1];
        const counter = / -c (\d+) (\d+)/.exec(line);
        const jump = / -j (\S+)/.exec(line)?.[1];
        if (!proto || !dport || !counter || !jump) continue;
        const dst = / -d ([\d.]+)\/32/.exec(line)?.[1];
        // NODEPORTS rules, and EXTERNAL-SERVICES rules that are not for a Service address, match a nodePort.
        const byAddress = dst && chain !== 'NODEPORTS' ? this.targets.byAddress.get(`${proto} ${dst}:${dport}`) : undefined;
        const target = byAddress ?? (chain === 'SERVICES' ? undefined : this.targets.byNodePort.get(`${proto} ${dport}`));
        if (!target) continue;
        const verdict = jump === 'REJECT' ? 'reject' : jump === 'DROP' ? 'drop' : 'dnat';
        out.push({ ...target, verdict, packets: Number(counter[1]), bytes: Number(counter[2]) });
      }
    });
    return out;
  }

  /**
   * clear removes portlab's jumps and chains, whatever run left them, in one restore: each built-in chain's rule that
   * jumps to a PORTLAB- chain is deleted, then every PORTLAB- chain is emptied and deleted.
   */
  private async clear(): Promise<void> {
    let lines: string[] = [];
    for (const table of ['nat', 'filter']) {
      const saved = await run(this.iptables, ['-w', '5', '-t', table, '-S']);
      const chains = [...saved.stdout.matchAll(new RegExp(`^-N (${CHAIN_PREFIX}\\S+)`, 'gm'))].map((m) => m[1]!);
      const jumps = saved.stdout.split('\n').filter((l) => /^-A [A-Z]+ /.test(l) && !l.startsWith(`-A ${CHAIN_PREFIX}`) && l.includes(`-j ${CHAIN_PREFIX}`));
      if (chains.length === 0 && jumps.length === 0) continue;
      lines = [...lines, `*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...jumps.map((l) => `-D${l.slice(2)}`), ...chains.map((c) => `-X ${c}`), 'COMMIT'];
    }
    if (lines.length > 0) await run(this.restore, ['-w', '5', '--noflush'], `${lines.join('\n')}\n`, applyTimeoutMs(lines.length));
  }

  async close(): Promise<void> {
    await this.clear();
    this.applied = {};
    this.started = false;
  }
}

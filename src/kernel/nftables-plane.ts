// nftables-plane.ts — kube-proxy's nftables rules in the kernel, in table `ip portlab`. The first apply replaces the
// table whole; later ones send one transaction with only what changed, as kube-proxy's partial syncs do.
import type { DesiredState } from '../model/state.js';
import { nftablesBase, nftablesServicePort } from '../rules/nftables.js';
import { proxyView, type ProxyNode } from '../rules/view.js';
import { applyTimeoutMs, counterTargets, kernelError, run, why, TABLE, type CounterTargets, type KernelPlane, type RuleCounter } from './plane.js';

const T = `ip ${TABLE}`;

/** Block is one Service port's lines, split the way a partial transaction needs them. */
interface Block {
  sets: string[];
  chains: string[];
  rules: string[];
  elements: string[];
}

function split(lines: string[]): Block {
  const b: Block = { sets: [], chains: [], rules: [], elements: [] };
  for (const l of lines) {
    if (l.startsWith('add set ')) b.sets.push(l);
    else if (l.startsWith('add chain ')) b.chains.push(l);
    else if (l.startsWith('add rule ')) b.rules.push(l);
    else if (l.startsWith('add element ')) b.elements.push(l);
  }
  return b;
}

/** elementKey is a set or map element's identity: its container and key, without its value or comment. */
function elementKey(line: string): string {
  const m = /^add element ip \S+ (\S+) \{ (.*?)(?: comment "[^"]*")?(?: : .*)? \}$/.exec(line);
  return m ? `${m[1]} { ${m[2]} }` : line;
}

const name = (line: string) => line.split(' ')[4]!;

/** COUNTED are the maps that dispatch a Service port's first packets: each of their elements keeps a counter. */
const COUNTED = ['service-ips', 'service-nodeports', 'no-endpoint-services', 'no-endpoint-nodeports'];

/** withCounters gives the dispatch maps per-element counters: the one change to kube-proxy's declarations. */
function withCounters(line: string): string {
  const map = /^add map \S+ \S+ (\S+) \{/.exec(line)?.[1];
  return map && COUNTED.includes(map) ? line.replace(' : verdict ; ', ' : verdict ; counter ; ') : line;
}

interface NftElement {
  elem?: { val?: { concat?: (string | number)[] }; counter?: { packets: number; bytes: number } };
}

export class NftablesPlane implements KernelPlane {
  readonly mode = 'nftables' as const;
  private blocks = new Map<string, { text: string; block: Block }>();
  private elements = new Map<string, string>();
  private started = false;
  private targets: CounterTargets = { byAddress: new Map(), byNodePort: new Map() };

  constructor(private readonly nft: string) {}

  /** snat is where marked packets leave from: every hop is on lo, where `masquerade` finds no address to use. */
  private static masquerade(node: ProxyNode): string {
    return `snat ip to ${node.ip}`;
  }

  async apply(state: DesiredState, node: ProxyNode): Promise<{ durationMs: number; changed: number }> {
    const started = performance.now();
    const view = proxyView(state, node);
    const next = new Map<string, { text: string; block: Block }>();
    for (const sp of view) {
      const lines = nftablesServicePort(T, sp, node);
      next.set(`${sp.name}/${sp.protocol}`, { text: lines.join('\n'), block: split(lines) });
    }
    const tx: string[] = [];
    let changed = 0;
    if (!this.started) {
      // A table left by an earlier run (a crash, kill -9) goes first; then the whole ruleset in one transaction.
      await run(this.nft, ['delete', 'table', 'ip', TABLE]);
      tx.push(...nftablesBase(T, node, NftablesPlane.masquerade(node)).filter((l) => l && !l.startsWith('#')).map(withCounters));
      this.elements = new Map();
    }
    const nextElements = new Map<string, string>();
    for (const { block } of next.values()) for (const e of block.elements) nextElements.set(elementKey(e), e);
    // Changed and new Service ports: their sets, chains (emptied) and rules.
    for (const [key, { text, block }] of next) {
      if (this.blocks.get(key)?.text === text && this.started) continue;
      changed++;
      for (const l of [...block.sets, ...block.chains]) tx.push(l);
      for (const c of block.chains) tx.push(`flush chain ${T} ${name(c)}`);
      for (const l of block.rules) tx.push(l);
    }
    // Elements: what left goes, what changed is replaced, what came is added.
    for (const [key, line] of this.elements) {
      const now = nextElements.get(key);
      if (now !== line) tx.push(`delete element ${T} ${key}`);
    }
    for (const [key, line] of nextElements) if (this.elements.get(key) !== line) tx.push(line);
    // Service ports that left: their chains are emptied, then deleted once nothing points at them; their sets too.
    const gone: Block[] = [];
    for (const [key, { block }] of this.blocks) if (!next.has(key)) gone.push(block);
    const nextChains = new Set([...next.values()].flatMap(({ block }) => block.chains.map(name)));
    for (const [key, { block }] of this.blocks) {
      const now = next.get(key);
      if (!now) continue;
      // A changed port may have lost an endpoint: its chain and affinity set go too.
      const keep = new Set(now.block.chains.map(name));
      const stale = block.chains.filter((c) => !keep.has(name(c)) && !nextChains.has(name(c)));
      const keepSets = new Set(now.block.sets.map(name));
      gone.push({ chains: stale, sets: block.sets.filter((s) => !keepSets.has(name(s))), rules: [], elements: [] });
    }
    for (const b of gone) for (const c of b.chains) tx.push(`flush chain ${T} ${name(c)}`);
    for (const b of gone) for (const c of b.chains) tx.push(`delete chain ${T} ${name(c)}`);
    for (const b of gone) for (const s of b.sets) tx.push(`delete set ${T} ${name(s)}`);
    changed += gone.filter((b) => b.chains.length > 0 || b.sets.length > 0).length;
    if (tx.length > 0) {
      const timeoutMs = applyTimeoutMs(tx.length);
      const result = await run(this.nft, ['-f', '-'], `${tx.join('\n')}\n`, timeoutMs);
      if (result.code !== 0) throw kernelError(`nft refused the transaction: ${why(result, timeoutMs)}`, 'The previous rules are still in place. This is a bug in portlab: please report it with the manifests.', 'PORTLAB_KERNEL_FAILED');
    }
    this.blocks = next;
    this.elements = nextElements;
    this.targets = counterTargets(view);
    this.started = true;
    return { durationMs: performance.now() - started, changed };
  }

  async counters(): Promise<RuleCounter[]> {
    if (!this.started) return [];
    const out: RuleCounter[] = [];
    await Promise.all(
      COUNTED.map(async (map) => {
        const listed = await run(this.nft, ['-j', 'list', 'map', 'ip', TABLE, map]);
        if (listed.code !== 0) return;
        const parsed = JSON.parse(listed.stdout) as { nftables: { map?: { elem?: [NftElement, Record<string, unknown>][] } }[] };
        const noEndpoints = map.startsWith('no-endpoint');
        for (const [key, verdict] of parsed.nftables.find((o) => o.map)?.map?.elem ?? []) {
          const parts = key.elem?.val?.concat;
          const counter = key.elem?.counter;
          if (!parts || !counter) continue;
          const target = map.endsWith('nodeports') ? this.targets.byNodePort.get(`${parts[0]} ${parts[1]}`) : this.targets.byAddress.get(`${parts[1]} ${parts[0]}:${parts[2]}`);
          if (!target) continue;
          out.push({ ...target, verdict: !noEndpoints ? 'dnat' : 'drop' in verdict ? 'drop' : 'reject', packets: counter.packets, bytes: counter.bytes });
        }
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    await run(this.nft, ['delete', 'table', 'ip', TABLE]);
    this.started = false;
    this.blocks.clear();
    this.elements.clear();
  }
}

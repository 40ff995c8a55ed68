// trace.ts — follow one new connection's first packet through the rules `portlab rules` prints, as the kernel would:
// the hooks in order, each chain and rule that matches, DNAT, and the masquerade mark.
import { contains } from './ip.js';
import { jumpRules } from './iptables.js';

export interface Packet {
  source: string;
  destination: string;
  port: number;
  protocol: 'tcp' | 'udp' | 'sctp';
}

export interface TraceStep {
  hook?: string;
  table?: string;
  chain: string;
  rule: string;
  /** effect says what the rule did: "jump CHAIN", "DNAT to …", "marked for masquerade", "REJECT", … */
  effect: string;
}

export interface TraceResult {
  /** output is kube-proxy's packet-flow form: the possible destinations sorted and joined by ", ", "REJECT", "DROP", or "". */
  output: string;
  masquerade: boolean;
  path: TraceStep[];
}

interface Walk {
  packet: Packet;
  /** destination is the current destination address: after DNAT, the endpoint's. */
  destination: string;
  dnat: string[];
  verdict?: 'DROP' | 'REJECT';
  masquerade: boolean;
  path: TraceStep[];
  local: Set<string>;
  hook: string;
}

function finish(w: Walk): TraceResult {
  const output = w.verdict ?? [...new Set(w.dnat)].sort().join(', ');
  return { output, masquerade: w.masquerade && !w.verdict, path: w.path };
}

// ---------------------------------------------------------------------------------------------------------------
// nftables: the rules are read from `add rule` and `add element` lines; the rule forms are the ones kube-proxy writes.

interface NftTable {
  chains: Map<string, string[]>;
  /** elements of sets and maps: key parts, and the verdict for a map. */
  elements: Map<string, { key: string[]; verdict?: string }[]>;
}

function parseNft(text: string): NftTable {
  const chains = new Map<string, string[]>();
  const elements = new Map<string, { key: string[]; verdict?: string }[]>();
  for (const raw of text.split('\n')) {
    const rule = /^add rule ip \S+ (\S+) (.*)$/.exec(raw);
    if (rule) {
      const list = chains.get(rule[1]!) ?? [];
      list.push(rule[2]!);
      chains.set(rule[1]!, list);
      continue;
    }
    const chain = /^add chain ip \S+ (\S+)/.exec(raw);
    if (chain && !chains.has(chain[1]!)) chains.set(chain[1]!, []);
    const element = /^add element ip \S+ (\S+) \{ (.*) \}$/.exec(raw);
    if (element) {
      const [keyText, verdict] = element[2]!.replace(/ comment "[^"]*"/, '').split(' : ') as [string, string | undefined];
      const list = elements.get(element[1]!) ?? [];
      list.push({ key: keyText.split(' . '), verdict });
      elements.set(element[1]!, list);
    }
  }
  return { chains, elements };
}

const NFT_HOOKS = {
  // A packet from this node leaves through the output hooks; one from elsewhere arrives through prerouting.
  local: [['filter-output-pre-dnat', 'output, filter, priority -110'], ['nat-output', 'output, nat, priority -100'], ['filter-output', 'output, filter, priority 0']],
  remote: [['filter-prerouting-pre-dnat', 'prerouting, filter, priority -110'], ['nat-prerouting', 'prerouting, nat, priority -100']],
} as const;

/** traceNftables walks a packet through an nftables ruleset printed by nftablesRuleset. */
export function traceNftables(ruleset: string, packet: Packet, localIPs: string[]): TraceResult {
  const table = parseNft(ruleset);
  const w: Walk = { packet, destination: packet.destination, dnat: [], masquerade: false, path: [], local: new Set([...localIPs, '127.0.0.1']), hook: '' };
  const fromHere = w.local.has(packet.source);
  for (const [chain, hook] of fromHere ? NFT_HOOKS.local : NFT_HOOKS.remote) {
    w.hook = hook;
    runNft(table, chain, w, 0);
    if (w.verdict) return finish(w);
    // Once the nat hook has run, the rest of the walk sees the translated destination.
    if (chain.startsWith('nat-') && w.dnat.length > 0) w.destination = w.dnat[0]!.split(':')[0]!;
  }
  // After routing: a packet for this node goes up the input hook, any other is forwarded.
  const [chain, hook] = w.local.has(w.destination) ? ['filter-input', 'input, filter, priority 0'] : fromHere ? [undefined, ''] : ['filter-forward', 'forward, filter, priority 0'];
  if (chain) {
    w.hook = hook;
    runNft(table, chain, w, 0);
  }
  return finish(w);
}

/** runNft runs one chain; it returns true when the packet got a final verdict or was translated (a terminal rule). */
function runNft(table: NftTable, chain: string, w: Walk, depth: number): boolean {
  const rules = table.chains.get(chain);
  if (!rules || depth > 32) return false;
  for (const rule of rules) {
    const step = (effect: string) => w.path.push({ hook: w.hook, chain, rule, effect });
    let rest = rule.replace(/ comment "[^"]*"$/, '').replace(/^ct state new /, '');
    let matched = true;
    // Matches come first in a rule; each one that holds is stripped, then the statement at the end runs.
    for (;;) {
      if (/^(ip daddr \. )?meta l4proto \. th dport vmap /.test(rest)) break;
      let m: RegExpExecArray | null;
      if ((m = /^ip (saddr|daddr) (!= )?\{ ([^}]*) \} ?/.exec(rest))) {
        const ip = m[1] === 'saddr' ? w.packet.source : w.destination;
        matched = m[3]!.split(',').some((p) => contains(p.trim(), ip)) !== Boolean(m[2]);
      } else if ((m = /^ip (saddr|daddr) @(\S+) ?/.exec(rest))) {
        // A source set is an affinity set: empty for a client's first connection.
        matched = m[1] === 'daddr' && (table.elements.get(m[2]!) ?? []).some((e) => e.key[0] === w.destination);
      } else if ((m = /^ip (saddr|daddr) (!= )?(\d[\d./]*) ?/.exec(rest))) {
        const ip = m[1] === 'saddr' ? w.packet.source : w.destination;
        matched = contains(m[3]!, ip) !== Boolean(m[2]);
      } else if ((m = /^fib (saddr|daddr) type local ?/.exec(rest))) {
        matched = w.local.has(m[1] === 'saddr' ? w.packet.source : w.destination);
      } else if ((m = /^(tcp|udp|sctp) dport (\d+) ?/.exec(rest))) {
        matched = m[1] === w.packet.protocol && Number(m[2]) === w.packet.port;
      } else break;
      if (!matched) break;
      rest = rest.slice(m[0].length);
    }
    if (!matched) continue;
    let m: RegExpExecArray | null;
    if ((m = /^(ip daddr \. )?meta l4proto \. th dport vmap @(\S+)$/.exec(rest))) {
      const key = m[1] ? [w.destination, w.packet.protocol, String(w.packet.port)] : [w.packet.protocol, String(w.packet.port)];
      const element = (table.elements.get(m[2]!) ?? []).find((e) => e.key.join(' . ') === key.join(' . '));
      if (!element?.verdict) continue;
      step(`${key.join(' . ')} is in @${m[2]}: ${element.verdict}`);
      if (runVerdict(table, element.verdict, w, depth)) return true;
      if (element.verdict.startsWith('goto')) return false;
    } else if (rest === 'jump mark-for-masquerade') {
      w.masquerade = true;
      step('marked for masquerade (SNAT to the node as the packet leaves)');
    } else if ((m = /^numgen random mod (\d+) vmap \{ (.*) \}$/.exec(rest))) {
      const targets = [...m[2]!.matchAll(/\d+ : goto (\S+)/g)].map((x) => x[1]!);
      step(`picks one of ${targets.length} endpoint chain(s) at random, 1/${targets.length} each`);
      for (const target of targets) runNft(table, target, w, depth + 1);
      return true;
    } else if ((m = /^meta l4proto (tcp|udp|sctp) dnat to (\S+)$/.exec(rest))) {
      w.dnat.push(m[2]!);
      step(`DNAT to ${m[2]}`);
      return true;
    } else if ((m = /^update @(\S+) \{ ip saddr \}$/.exec(rest))) {
      step(`remembers the client in @${m[1]} for session affinity`);
    } else if (/^(jump|goto|drop|reject|return)( |$)/.test(rest)) {
      if (rest === 'return') {
        step('return');
        return false;
      }
      step(rest);
      if (runVerdict(table, rest, w, depth)) return true;
      if (rest.startsWith('goto')) return false;
    } else if (rest === '' || /^(mark |masquerade)/.test(rest)) {
      // marks and masquerading happen in postrouting; the walk tracks the mark itself
    }
  }
  return false;
}

function runVerdict(table: NftTable, verdict: string, w: Walk, depth: number): boolean {
  const step = (effect: string) => w.path.push({ hook: w.hook, chain: verdict.split(' ')[1] ?? verdict, rule: '', effect });
  if (verdict === 'drop' || verdict === 'reject') {
    w.verdict = verdict === 'drop' ? 'DROP' : 'REJECT';
    if (w.path.length > 0) w.path[w.path.length - 1]!.effect += ` → ${w.verdict}`;
    else step(w.verdict);
    return true;
  }
  const m = /^(jump|goto) (\S+)$/.exec(verdict);
  if (!m) return false;
  return runNft(table, m[2]!, w, depth + 1);
}

// ---------------------------------------------------------------------------------------------------------------
// iptables: the restore input is read as chains of argument lists; the built-in chains get kube-proxy's jump rules.

interface IptRule {
  raw: string;
  args: string[];
}

function splitArgs(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

function parseIpt(text: string): Map<string, Map<string, IptRule[]>> {
  const tables = new Map<string, Map<string, IptRule[]>>();
  let current: Map<string, IptRule[]> | undefined;
  for (const raw of text.split('\n')) {
    if (raw.startsWith('*')) {
      current = tables.get(raw.slice(1)) ?? new Map();
      tables.set(raw.slice(1), current);
    } else if (raw.startsWith(':') && current) {
      const chain = raw.slice(1).split(' ')[0]!;
      if (!current.has(chain)) current.set(chain, []);
    } else if (raw.startsWith('-A ') && current) {
      const args = splitArgs(raw);
      const chain = args[1]!;
      current.set(chain, [...(current.get(chain) ?? []), { raw, args: args.slice(2) }]);
    }
  }
  for (const j of jumpRules()) {
    const table = tables.get(j.table);
    if (!table) continue;
    const args = splitArgs(j.args.join(' '));
    table.set(j.from, [...(table.get(j.from) ?? []), { raw: `-A ${j.from} ${j.args.join(' ')}`, args }]);
  }
  return tables;
}

interface IptMatch {
  matched: boolean;
  probability?: string;
  target?: string;
  targetArgs: string[];
}

function matchIpt(rule: IptRule, w: Walk): IptMatch {
  const a = rule.args;
  const out: IptMatch = { matched: true, targetArgs: [] };
  for (let i = 0; i < a.length; i++) {
    const negate = a[i] === '!';
    if (negate) i++;
    const opt = a[i];
    const val = a[i + 1] ?? '';
    const check = (ok: boolean) => {
      if (ok === negate) out.matched = false;
      i++;
    };
    switch (opt) {
      case '-s':
        check(contains(val, w.packet.source));
        break;
      case '-d':
        check(contains(val, w.destination));
        break;
      case '-p':
        check(val === w.packet.protocol);
        break;
      case '--dport':
        check(Number(val) === w.packet.port);
        break;
      case '--src-type':
        check(val === 'LOCAL' && w.local.has(w.packet.source));
        break;
      case '--dst-type':
        check(val === 'LOCAL' && w.local.has(w.destination));
        break;
      case '--ctstate': {
        // A new connection is NEW, and DNAT once a nat rule has translated it; it is never RELATED or ESTABLISHED.
        const states = new Set(['NEW', ...(w.dnat.length > 0 ? ['DNAT'] : [])]);
        check(val.split(',').some((s) => states.has(s)));
        break;
      }
      case '--mark':
        check(w.masquerade);
        break;
      case '--rcheck':
        out.matched = false; // an affinity list is empty for a client's first connection
        break;
      case '--probability':
        out.probability = val;
        i++;
        break;
      case '-j':
        out.target = val;
        out.targetArgs = a.slice(i + 2);
        i = a.length;
        break;
      case '-m':
      case '--comment':
      case '--name':
      case '--nfacct-name':
      case '--mode':
      case '--seconds':
        i++;
        break;
      default:
        break;
    }
    if (!out.matched) return out;
  }
  return out;
}

/** runIpt returns true when the chain ended the walk for its table: a verdict or a DNAT. */
function runIpt(tables: Map<string, Map<string, IptRule[]>>, table: string, chain: string, w: Walk, depth: number): boolean {
  const rules = tables.get(table)?.get(chain);
  if (!rules || depth > 32) return false;
  for (const rule of rules) {
    const m = matchIpt(rule, w);
    if (!m.matched || !m.target) continue;
    const step = (effect: string) => w.path.push({ hook: w.hook, table, chain, rule: rule.raw, effect });
    switch (m.target) {
      case 'KUBE-MARK-MASQ':
        w.masquerade = true;
        step('marked for masquerade (SNAT to the node as the packet leaves)');
        continue;
      case 'ACCEPT':
        step('ACCEPT');
        return true;
      case 'DROP':
      case 'REJECT':
        w.verdict = m.target;
        step(m.target);
        return true;
      case 'RETURN':
        step('RETURN');
        return false;
      case 'DNAT': {
        const to = m.targetArgs[m.targetArgs.indexOf('--to-destination') + 1]!;
        w.dnat.push(to);
        step(`DNAT to ${to}`);
        return true;
      }
      case 'MARK':
      case 'MASQUERADE':
        continue;
      default: {
        step(m.probability ? `jump ${m.target} with probability ${m.probability} (else the next rule)` : `jump ${m.target}`);
        const ended = runIpt(tables, table, m.target, w, depth + 1);
        // A --probability rule may not be taken: keep walking so every endpoint it could reach is listed.
        if (ended && !m.probability) return true;
      }
    }
  }
  return false;
}

/** traceIptables walks a packet through an iptables-restore input printed by iptablesRestore. */
export function traceIptables(ruleset: string, packet: Packet, localIPs: string[]): TraceResult {
  const tables = parseIpt(ruleset);
  const w: Walk = { packet, destination: packet.destination, dnat: [], masquerade: false, path: [], local: new Set([...localIPs, '127.0.0.1']), hook: '' };
  const fromHere = w.local.has(packet.source);
  w.hook = fromHere ? 'nat OUTPUT' : 'nat PREROUTING';
  runIpt(tables, 'nat', fromHere ? 'OUTPUT' : 'PREROUTING', w, 0);
  if (w.dnat.length > 0) w.destination = w.dnat[0]!.split(':')[0]!;
  const filterChains = fromHere ? ['OUTPUT', ...(w.local.has(w.destination) ? ['INPUT'] : [])] : [w.local.has(w.destination) ? 'INPUT' : 'FORWARD'];
  for (const chain of filterChains) {
    w.hook = `filter ${chain}`;
    runIpt(tables, 'filter', chain, w, 0);
    if (w.verdict) break;
  }
  return finish(w);
}

// modes-report.ts — the mode comparison's figures: per target medians, each mode's added cost per hop, and the
// control plane's curves over the number of Services; printed as a table, JSON, or a page with line charts.
import type { ProxyMode } from '../cli/options.js';
import type { ScalePoint } from './control-plane.js';
import { machine, summarize, type Sample, type Summary } from './report.js';

export interface ModeTarget {
  id: string;
  mode: ProxyMode | 'pod';
  layer: 'pod' | 'service' | 'node';
  label: string;
}

export interface ModesReport {
  kind: 'modes';
  machine: ReturnType<typeof machine>;
  reps: number;
  quick: boolean;
  inNamespace: boolean;
  targets: (ModeTarget & { metrics: Record<string, Summary> })[];
  /** hops: what each mode adds over the pod, per layer: round trip and a new connection's first byte, in µs. */
  hops: { mode: ProxyMode; layer: string; rttAddedUs: Summary; connectAddedUs: Summary; firstByteAddedUs: Summary }[];
  scale: ScalePoint[];
  /** growth: each mode's added connect latency at its largest count over the same at 1 Service. */
  growth: { mode: ProxyMode; from: number; to: number; ratio: number }[];
  notes: string[];
}

export function buildModesReport(input: { targets: ModeTarget[]; samples: Sample[]; reps: number; quick: boolean; scale: ScalePoint[]; notes: string[]; inNamespace: boolean }): ModesReport {
  const perRep = (target: string, metric: string) => new Map(input.samples.filter((s) => s.target === target && s.metric === metric).map((s) => [s.rep, s.value]));
  const targets = input.targets.map((t) => {
    const metrics: Record<string, Summary> = {};
    for (const metric of new Set(input.samples.filter((s) => s.target === t.id).map((s) => s.metric))) metrics[metric] = summarize([...perRep(t.id, metric).values()]);
    return { ...t, metrics };
  });
  const added = (id: string, metric: string) => {
    const pod = perRep('pod', metric);
    return summarize([...perRep(id, metric)].filter(([rep]) => pod.has(rep)).map(([rep, v]) => v - pod.get(rep)!));
  };
  const hops = input.targets
    .filter((t): t is ModeTarget & { mode: ProxyMode } => t.mode !== 'pod')
    .map((t) => ({ mode: t.mode, layer: t.layer, rttAddedUs: added(t.id, 'tcp_rtt_p50_us'), connectAddedUs: added(t.id, 'connect_p50_us'), firstByteAddedUs: added(t.id, 'first_byte_p50_us') }));
  const growth: ModesReport['growth'] = [];
  for (const mode of new Set(input.scale.map((p) => p.mode))) {
    const points = input.scale.filter((p) => p.mode === mode).sort((a, b) => a.services - b.services);
    const first = points[0];
    const last = points.at(-1);
    if (first && last && last !== first) growth.push({ mode, from: first.services, to: last.services, ratio: last.connectAddedUs / first.connectAddedUs });
  }
  return { kind: 'modes', machine: machine(), reps: input.reps, quick: input.quick, inNamespace: input.inNamespace, targets, hops, scale: input.scale, growth, notes: input.notes };
}

const num = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const fmt = (s: Summary | undefined, digits = 0) => (!s ? '–' : s.min === s.max ? num(s.median, digits) : `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`);

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

export function renderModesTable(r: ModesReport): string {
  const out: string[] = [];
  out.push(`portlab bench, proxy modes — ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${r.reps} rep(s)${r.quick ? ' (quick: too short for its figures to mean anything)' : ''}`);
  out.push(`medians (min–max) over repetitions; latency in µs${r.inNamespace ? '; run in a network namespace of its own' : ''}\n`);
  out.push(
    pad([
      ['target', 'tcp rtt p50', 'connect p50', 'first byte p50', 'req/s c=32', 'bulk MB/s'],
      ...r.targets.map((t) => [t.label, fmt(t.metrics.tcp_rtt_p50_us), fmt(t.metrics.connect_p50_us), fmt(t.metrics.first_byte_p50_us), fmt(t.metrics.http_rps_c32), fmt(t.metrics.bulk_MBps)]),
    ]),
  );
  out.push('\nadded over the pod, p50 µs (per repetition, then the median)');
  out.push(pad([['mode', 'layer', 'rtt', 'connect', 'first byte'], ...r.hops.map((h) => [h.mode, h.layer, fmt(h.rttAddedUs), fmt(h.connectAddedUs), fmt(h.firstByteAddedUs)])]));
  if (r.scale.length > 0) {
    out.push('\ncontrol plane: apply N Services (2 ports each), apply one changed Service; new connections (p50 µs) to the last Service, to the pod beside it, and to the pod with nothing applied');
    out.push(
      pad([
        ['mode', 'Services', 'apply ms', 'one change ms', 'connect', 'pod connect', 'no-rules connect', 'added connect', 'added first byte'],
        ...r.scale.map((p) => [p.mode, num(p.services), num(p.applyMs, 1), num(p.changeMs, 1), num(p.connectP50Us), num(p.podConnectP50Us), num(p.baselineConnectP50Us), num(p.connectAddedUs), num(p.firstByteAddedUs)]),
      ]),
    );
    for (const g of r.growth) out.push(`${g.mode}: added connect latency at ${num(g.to)} Services ÷ at ${num(g.from)}: ${g.ratio.toFixed(2)}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}

const COLORS: Record<string, string> = { userspace: '#3b82f6', nftables: '#16a34a', iptables: '#dc2626' };

/** lineChart plots one value per mode over the counts of Services, on a log scale of counts. */
function lineChart(title: string, points: ScalePoint[], value: (p: ScalePoint) => number, unit: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const counts = [...new Set(points.map((p) => p.services))].sort((a, b) => a - b);
  const max = Math.max(1, ...points.map(value));
  const min = Math.min(0, ...points.map(value));
  const x = (n: number) => 80 + (counts.length === 1 ? 0 : (counts.indexOf(n) / (counts.length - 1)) * 560);
  const y = (v: number) => 260 - ((v - min) / (max - min)) * 220;
  const series = [...new Set(points.map((p) => p.mode))].map((mode, i) => {
    const mine = points.filter((p) => p.mode === mode).sort((a, b) => a.services - b.services);
    const path = mine.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.services).toFixed(1)},${y(value(p)).toFixed(1)}`).join(' ');
    const dots = mine.map((p) => `<circle cx="${x(p.services)}" cy="${y(value(p))}" r="4" fill="${COLORS[mode]}"><title>${mode}, ${num(p.services)} Services: ${num(value(p), 1)} ${unit}</title></circle>`).join('');
    return `<path d="${path}" fill="none" stroke="${COLORS[mode]}" stroke-width="2"/>${dots}<text x="660" y="${40 + i * 18}" fill="${COLORS[mode]}">${mode}</text>`;
  });
  const axis = counts.map((n) => `<text x="${x(n)}" y="282" text-anchor="middle">${num(n)}</text>`).join('');
  const ticks = [min, (min + max) / 2, max].map((v) => `<text x="70" y="${y(v) + 4}" text-anchor="end">${num(v)}</text><line x1="76" x2="640" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`).join('');
  return `<h2>${esc(title)}</h2><svg width="760" height="300" font-family="system-ui" font-size="13">${ticks}${axis}${series.join('')}<text x="360" y="298" text-anchor="middle">Services (2 ports each)</text></svg>`;
}

export function renderModesHtml(r: ModesReport): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = r.targets
    .map((t) => `<tr><td>${esc(t.label)}</td><td>${fmt(t.metrics.tcp_rtt_p50_us)}</td><td>${fmt(t.metrics.connect_p50_us)}</td><td>${fmt(t.metrics.first_byte_p50_us)}</td><td>${fmt(t.metrics.http_rps_c32)}</td><td>${fmt(t.metrics.bulk_MBps)}</td></tr>`)
    .join('');
  const scale = r.scale.length
    ? [
        lineChart('Added connect latency to the last Service (over the same with nothing applied), p50 µs', r.scale, (p) => p.connectAddedUs, 'µs'),
        lineChart('Connect latency straight to the pod, with the rules in place, p50 µs', r.scale, (p) => p.podConnectP50Us, 'µs'),
        lineChart('Time to apply every Service, ms', r.scale, (p) => p.applyMs, 'ms'),
        lineChart('Time to apply one changed Service, ms', r.scale, (p) => p.changeMs, 'ms'),
      ].join('\n')
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>portlab bench: proxy modes</title>
<style>body{font-family:system-ui;margin:24px;color:#1f2937}h1{font-size:20px}h2{font-size:15px;margin-top:28px}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:left}</style></head>
<body><h1>portlab bench: proxy modes</h1><p>${esc(r.machine.cpu)} · ${r.machine.cores} cores · Node ${esc(r.machine.node)} · ${r.reps} repetition(s) · ${esc(r.machine.date)}. Medians over repetitions, comparable only to each other on this machine.</p>
<table><tr><th>target</th><th>tcp rtt p50 µs</th><th>connect p50 µs</th><th>first byte p50 µs</th><th>req/s c=32</th><th>bulk MB/s</th></tr>${rows}</table>
${scale}
${r.growth.map((g) => `<p>${esc(g.mode)}: added connect latency at ${num(g.to)} Services ÷ at ${num(g.from)}: ${g.ratio.toFixed(2)}</p>`).join('')}
${r.notes.map((n) => `<p>note: ${esc(n)}</p>`).join('')}
</body></html>
`;
}

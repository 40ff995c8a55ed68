// report.ts — medians, min–max, hop costs and target ratios from the samples; printed as a table, JSON or a chart page.
import os from 'node:os';

export interface TargetInfo {
  id: string;
  label: string;
  group: 'L4' | 'L7';
  kind: 'layer' | 'baseline';
}

export interface Sample {
  target: string;
  metric: string;
  rep: number;
  value: number;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export interface Report {
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; os: string; date: string };
  reps: number;
  quick: boolean;
  sizes: Record<string, number>;
  targets: (TargetInfo & { metrics: Record<string, Summary> })[];
  hops: { hop: string; group: string; metric: string; addedUs: Summary }[];
  ratios: { name: string; value: number; target: string; met: boolean }[];
  /** comparisons are ratios shown for context, with no target. */
  comparisons: { name: string; value: number }[];
  portlab: { cpuSeconds: number; peakRssMiB: number };
  notes: string[];
}

export function summarize(values: number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return { median: s[Math.floor((s.length - 1) / 2)] ?? NaN, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

/** HOPS: each hop's cost is the difference between the two layers around it, taken per repetition. */
const HOPS: [string, string, string, string][] = [
  ['L4', 'service hop (portlab)', 'l4-service', 'l4-pod'],
  ['L4', 'node hop, via service (portlab)', 'l4-node', 'l4-service'],
  ['L4', 'nodePort direct hop (portlab)', 'l4-node-direct', 'l4-pod'],
  ['L4', 'bare Node pipe hop', 'l4-pipe', 'l4-pod'],
  ['L4', 'HAProxy hop', 'l4-haproxy', 'l4-pod'],
  ['L4', 'nginx stream hop', 'l4-nginx', 'l4-pod'],
  ['L7', 'service hop (portlab L7)', 'l7-service', 'l7-pod'],
  ['L7', 'node hop, via service (portlab L7)', 'l7-node', 'l7-service'],
  ['L7', 'nodePort direct hop (portlab L7)', 'l7-node-direct', 'l7-pod'],
  ['L7', 'plain http-proxy hop', 'l7-http-proxy', 'l7-pod'],
];

/** machine is what a figure needs beside it: the CPU, cores, memory, Node, kernel and date. */
export function machine(): Report['machine'] {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
  };
}

export function buildReport(input: {
  targets: TargetInfo[];
  samples: Sample[];
  reps: number;
  quick: boolean;
  sizes: Record<string, number>;
  portlab: { cpuSeconds: number; peakRssMiB: number };
  notes: string[];
}): Report {
  const perRep = (target: string, metric: string) => {
    const m = new Map<number, number>();
    for (const s of input.samples) if (s.target === target && s.metric === metric) m.set(s.rep, s.value);
    return m;
  };
  const targets = input.targets.map((t) => {
    const metrics: Record<string, Summary> = {};
    for (const metric of new Set(input.samples.filter((s) => s.target === t.id).map((s) => s.metric))) {
      metrics[metric] = summarize([...perRep(t.id, metric).values()]);
    }
    return { ...t, metrics };
  });
  const diff = (a: string, b: string, metric: string) => {
    const x = perRep(a, metric);
    const y = perRep(b, metric);
    return [...x].filter(([rep]) => y.has(rep)).map(([rep, v]) => v - y.get(rep)!);
  };
  const ratio = (a: string, b: string, metric: string) => {
    const x = perRep(a, metric);
    const y = perRep(b, metric);
    return summarize([...x].filter(([rep]) => y.has(rep)).map(([rep, v]) => v / y.get(rep)!)).median;
  };
  const hops: Report['hops'] = [];
  for (const [group, hop, a, b] of HOPS) {
    const metric = group === 'L4' ? 'tcp_rtt_p50_us' : 'http_p50_us';
    const d = diff(a, b, metric);
    if (d.length > 0) hops.push({ hop, group, metric, addedUs: summarize(d) });
  }
  const hopRatio = () => {
    const mine = diff('l4-service', 'l4-pod', 'tcp_rtt_p50_us');
    const pipe = diff('l4-pipe', 'l4-pod', 'tcp_rtt_p50_us');
    return summarize(mine.map((v, i) => v / (pipe[i] ?? NaN))).median;
  };
  const ratios: Report['ratios'] = [
    { name: "portlab L4 hop's added p50 ÷ bare pipe's added p50", value: hopRatio(), target: '≤ 1.15', met: hopRatio() <= 1.15 },
    { name: 'portlab L4 req/s at c=32 ÷ bare pipe', value: ratio('l4-service', 'l4-pipe', 'http_rps_c32'), target: '≥ 0.9', met: ratio('l4-service', 'l4-pipe', 'http_rps_c32') >= 0.9 },
    { name: 'portlab L4 bulk MB/s ÷ bare pipe', value: ratio('l4-service', 'l4-pipe', 'bulk_MBps'), target: '≥ 0.9', met: ratio('l4-service', 'l4-pipe', 'bulk_MBps') >= 0.9 },
    { name: 'portlab L7 req/s at c=32 ÷ plain http-proxy', value: ratio('l7-service', 'l7-http-proxy', 'http_rps_c32'), target: '≥ 1.0', met: ratio('l7-service', 'l7-http-proxy', 'http_rps_c32') >= 1.0 },
  ];
  const comparisons: Report['comparisons'] = [
    { name: 'portlab L7 CPU per request at c=32 ÷ plain http-proxy', value: ratio('l7-service', 'l7-http-proxy', 'cpu_us_per_req') },
  ];
  return {
    machine: machine(),
    reps: input.reps,
    quick: input.quick,
    sizes: input.sizes,
    targets,
    hops,
    ratios,
    comparisons,
    portlab: input.portlab,
    notes: input.notes,
  };
}

const fmt = (s: Summary | undefined, digits = 0) => {
  if (!s) return '–';
  const f = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
};

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

/** renderTable is the terminal report: medians with min–max over repetitions. */
export function renderTable(r: Report, check = false): string {
  const out: string[] = [];
  out.push(`portlab bench — ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${r.reps} rep(s)${r.quick ? ' (quick)' : ''}`);
  out.push('medians (min–max) over repetitions; latency in µs\n');
  out.push(
    pad([
      ['L4 target', 'tcp rtt p50', 'p90', 'p99', 'max', 'http p50', 'http p99', 'req/s c=32', 'bulk MB/s', 'conn/s'],
      ...r.targets
        .filter((t) => t.group === 'L4')
        .map((t) => [t.label, fmt(t.metrics.tcp_rtt_p50_us), fmt(t.metrics.tcp_rtt_p90_us), fmt(t.metrics.tcp_rtt_p99_us), fmt(t.metrics.tcp_rtt_max_us), fmt(t.metrics.http_p50_us), fmt(t.metrics.http_p99_us), fmt(t.metrics.http_rps_c32), fmt(t.metrics.bulk_MBps), fmt(t.metrics.conn_per_s)]),
    ]),
  );
  out.push('');
  out.push(
    pad([
      ['L7 target', 'http p50', 'http p99', 'req/s c=32', 'CPU µs/req'],
      ...r.targets.filter((t) => t.group === 'L7').map((t) => [t.label, fmt(t.metrics.http_p50_us), fmt(t.metrics.http_p99_us), fmt(t.metrics.http_rps_c32), fmt(t.metrics.cpu_us_per_req)]),
    ]),
  );
  out.push('\nadded p50 latency per hop (difference of adjacent layers, µs)');
  out.push(pad([['hop', 'added µs'], ...r.hops.map((h) => [h.hop, fmt(h.addedUs)])]));
  out.push(check ? '\nratios and the project\'s targets (--check)' : '\nratios (the project\'s targets beside them; --check compares)');
  out.push(pad([['ratio', 'value', 'target', ...(check ? [''] : [])], ...r.ratios.map((x) => [x.name, x.value.toFixed(3), x.target, ...(check ? [x.met ? 'met' : 'NOT met'] : [])])]));
  for (const c of r.comparisons) out.push(`${c.name}: ${c.value.toFixed(3)} (for context, not a target)`);
  out.push(`\nportlab process: ${r.portlab.cpuSeconds.toFixed(1)} s CPU during the run, peak RSS ${r.portlab.peakRssMiB.toFixed(0)} MiB`);
  for (const n of r.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}

/** renderHtml is a self-contained page: bars of p50 with a p99 tick per layer, and bars of hop cost. */
export function renderHtml(r: Report): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const chart = (title: string, rows: { label: string; value: number; tick?: number; baseline?: boolean }[], unit: string) => {
    const max = Math.max(1, ...rows.map((x) => Math.max(x.value, x.tick ?? 0)));
    const h = rows.length * 30 + 40;
    const bars = rows
      .map((x, i) => {
        const y = 30 + i * 30;
        const w = (x.value / max) * 480;
        const tick = x.tick === undefined ? '' : `<line x1="${300 + (x.tick / max) * 480}" x2="${300 + (x.tick / max) * 480}" y1="${y}" y2="${y + 20}" stroke="#d33" stroke-width="2"><title>p99 ${x.tick.toFixed(0)} ${unit}</title></line>`;
        return `<text x="290" y="${y + 15}" text-anchor="end">${esc(x.label)}</text><rect x="300" y="${y}" width="${Math.max(1, w)}" height="20" fill="${x.baseline ? '#9aa5b8' : '#3b82f6'}"><title>${x.value.toFixed(1)} ${unit}</title></rect><text x="${306 + w}" y="${y + 15}">${x.value.toFixed(0)} ${unit}</text>${tick}`;
      })
      .join('');
    return `<h2>${esc(title)}</h2><svg width="900" height="${h}" font-family="system-ui" font-size="13">${bars}</svg>`;
  };
  const l4 = r.targets.filter((t) => t.group === 'L4');
  const l7 = r.targets.filter((t) => t.group === 'L7');
  const body = [
    chart('L4: TCP round trip, 64 bytes (p50 bar, p99 tick)', l4.map((t) => ({ label: t.label, value: t.metrics.tcp_rtt_p50_us?.median ?? 0, tick: t.metrics.tcp_rtt_p99_us?.median, baseline: t.kind === 'baseline' })), 'µs'),
    chart('L7: HTTP keep-alive latency at c=1 (p50 bar, p99 tick)', l7.map((t) => ({ label: t.label, value: t.metrics.http_p50_us?.median ?? 0, tick: t.metrics.http_p99_us?.median, baseline: t.kind === 'baseline' })), 'µs'),
    chart('Added p50 latency per hop', r.hops.map((h) => ({ label: h.hop, value: Math.max(0, h.addedUs.median), baseline: !h.hop.includes('portlab') })), 'µs'),
    chart('HTTP requests/s at c=32', r.targets.map((t) => ({ label: `${t.group} ${t.label}`, value: t.metrics.http_rps_c32?.median ?? 0, baseline: t.kind === 'baseline' })), 'req/s'),
    chart('L7: CPU per request at c=32 (the process that answers)', l7.map((t) => ({ label: t.label, value: t.metrics.cpu_us_per_req?.median ?? 0, baseline: t.kind === 'baseline' })), 'µs'),
    chart('Bulk throughput', l4.map((t) => ({ label: t.label, value: t.metrics.bulk_MBps?.median ?? 0, baseline: t.kind === 'baseline' })), 'MB/s'),
  ].join('\n');
  const ratios =
    r.ratios.map((x) => `<tr><td>${esc(x.name)}</td><td>${x.value.toFixed(3)}</td><td>${esc(x.target)}</td><td>${x.met ? '✅ met' : '❌ not met'}</td></tr>`).join('') +
    r.comparisons.map((c) => `<tr><td>${esc(c.name)}</td><td>${c.value.toFixed(3)}</td><td>–</td><td>for context</td></tr>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>portlab bench</title>
<style>body{font-family:system-ui;margin:24px;color:#1f2937}h1{font-size:20px}h2{font-size:15px;margin-top:28px}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:left}</style></head>
<body><h1>portlab bench</h1><p>${esc(r.machine.cpu)} · ${r.machine.cores} cores · Node ${esc(r.machine.node)} · ${r.reps} repetition(s) · ${esc(r.machine.date)}. Blue: portlab layers; grey: baselines. Numbers are medians over repetitions, comparable only to each other on this machine.</p>
<table><tr><th>ratio</th><th>value</th><th>target</th><th></th></tr>${ratios}</table>
${body}
<p>portlab: ${r.portlab.cpuSeconds.toFixed(1)} s CPU, peak RSS ${r.portlab.peakRssMiB.toFixed(0)} MiB.</p>
${r.notes.map((n) => `<p>note: ${esc(n)}</p>`).join('')}
</body></html>
`;
}

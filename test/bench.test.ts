// `portlab bench --quick` runs every measurement briefly: every layer and every metric is there, finite and positive.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { runCli } from './helpers/cli.js';
import { tempManifest } from './helpers/portlab.js';

test.serial('bench --quick reports every layer and metric with finite, positive values, plus hop costs and target ratios', async (t) => {
  const out = await tempManifest('', 'bench.json');
  const html = `${out.dir}/bench.html`;
  try {
    const run = await runCli(['bench', '--quick', '--json', out.file, '--html', html], undefined, 180_000);
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout, /added p50 latency per hop/);
    const report = JSON.parse(await readFile(out.file, 'utf8')) as {
      targets: { id: string; group: string; metrics: Record<string, { median: number }> }[];
      hops: { hop: string; addedUs: { median: number } }[];
      ratios: { name: string; value: number }[];
      comparisons: { name: string; value: number }[];
      portlab: { cpuSeconds: number; peakRssMiB: number };
      notes: string[];
    };
    const ids = report.targets.map((x) => x.id);
    for (const id of ['l4-pod', 'l4-service', 'l4-node', 'l4-node-direct', 'l4-pipe', 'l7-pod', 'l7-service', 'l7-node', 'l7-node-direct', 'l7-http-proxy']) t.true(ids.includes(id), id);
    for (const target of report.targets) {
      const wanted = target.group === 'L4' ? ['tcp_rtt_p50_us', 'tcp_rtt_p90_us', 'tcp_rtt_p99_us', 'tcp_rtt_max_us', 'http_p50_us', 'http_p99_us', 'http_rps_c32', 'bulk_MBps', 'conn_per_s'] : ['http_p50_us', 'http_p99_us', 'http_rps_c32', 'cpu_us_per_req'];
      for (const metric of wanted) {
        const v = target.metrics[metric]?.median;
        t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `${target.id} ${metric}: ${v}`);
      }
    }
    t.true(report.hops.length >= 7);
    for (const h of report.hops) t.true(Number.isFinite(h.addedUs.median), h.hop);
    t.is(report.ratios.length, 4);
    for (const r of report.ratios) t.true(Number.isFinite(r.value) && r.value > 0, r.name);
    t.is(report.comparisons.length, 1);
    for (const c of report.comparisons) t.true(Number.isFinite(c.value) && c.value > 0, c.name);
    t.regex(run.stdout, /CPU µs\/req/);
    t.true(report.portlab.cpuSeconds > 0 && report.portlab.peakRssMiB > 0);
    // HAProxy and nginx are measured when installed, and skipped with a note when not.
    for (const [id, name] of [['l4-haproxy', 'HAProxy'], ['l4-nginx', 'nginx']] as const) {
      t.true(ids.includes(id) || report.notes.some((n) => n.includes(`skipped ${name}`)), name);
    }
    const page = await readFile(html, 'utf8');
    t.true(page.includes('<svg') && page.includes('Added p50 latency per hop'));
    t.false(/<script|https?:\/\//.test(page.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')), 'self-contained: no scripts, no remote assets');
  } finally {
    await out.cleanup();
  }
});

test.serial('bench --quick --proxy-mode userspace,nftables,iptables compares the modes in its own network namespace, with the control plane at each size', async (t) => {
  const out = await tempManifest('', 'modes.json');
  try {
    const run = await runCli(['bench', '--quick', '--proxy-mode', 'userspace,nftables,iptables', '--json', out.file, '--html', `${out.dir}/modes.html`], undefined, 170_000);
    t.is(run.code, 0, run.stderr);
    const report = JSON.parse(await readFile(out.file, 'utf8')) as {
      inNamespace: boolean;
      targets: { id: string; metrics: Record<string, { median: number }> }[];
      hops: { mode: string; layer: string }[];
      scale: { mode: string; services: number; applyMs: number; changeMs: number; connectP50Us: number }[];
      growth: { mode: string; ratio: number }[];
      notes: string[];
    };
    const skipped = report.notes.filter((n) => n.startsWith('skipped'));
    if (skipped.length > 0) {
      if (process.env.CI) t.fail(`CI must run the kernel modes: ${skipped.join('; ')}`);
      else t.log(skipped.join('; '));
      return;
    }
    t.true(report.inNamespace);
    for (const mode of ['userspace', 'nftables', 'iptables']) {
      for (const layer of ['service', 'node']) {
        const target = report.targets.find((x) => x.id === `${mode}-${layer}`);
        for (const metric of ['tcp_rtt_p50_us', 'connect_p50_us', 'first_byte_p50_us', 'http_rps_c32', 'bulk_MBps']) {
          const v = target?.metrics[metric]?.median;
          t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `${mode}-${layer} ${metric}: ${v}`);
        }
        t.true(report.hops.some((h) => h.mode === mode && h.layer === layer));
      }
      const points = report.scale.filter((p) => p.mode === mode);
      t.deepEqual(points.map((p) => p.services), [1, 100], mode);
      for (const p of points) t.true(p.applyMs > 0 && p.changeMs > 0 && p.connectP50Us > 0, `${mode} at ${p.services}: ${JSON.stringify(p)}`);
      t.true(report.growth.some((g) => g.mode === mode && Number.isFinite(g.ratio)));
    }
    t.regex(run.stdout, /control plane: apply N Services/);
    t.regex(await readFile(`${out.dir}/modes.html`, 'utf8'), /<svg[^>]*>.*<path d="M/s);
  } finally {
    await out.cleanup();
  }
});

test('bench flags: --check refuses a --quick run and a mode comparison, which have no targets to meet', async (t) => {
  for (const args of [['--check', '--quick'], ['--check', '--proxy-mode', 'userspace,nftables']]) {
    const run = await runCli(['bench', ...args]);
    t.is(run.code, 2, run.stderr);
    t.regex(run.stderr, /--check/);
  }
  const bad = await runCli(['bench', '--quick', '--proxy-mode', 'userspace,ipvs']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--proxy-mode "ipvs": expected one of userspace, nftables, iptables/);
});

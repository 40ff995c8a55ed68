// The dashboard in a real browser: Debian's Chromium driven by playwright-core, and the same Chromium run the plain
// way (headless, a virtual time budget, no driver). It must run in CI, never skip there.
import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { Agent, request } from 'undici';
import { ARTIFACTS, CHROMIUM, browserMissing, headless } from './helpers/chromium.js';
import { MY_APP, SEED, range, startPortlab, waitFor } from './helpers/portlab.js';

test('the dashboard tells the truth: the process\'s counts, shares per Service port, whole routes, readiness, the mode, the rules, and no script errors under traffic', async (t) => {
  if (browserMissing(t)) return;
  const { chromium } = await import('playwright-core');
  const r = range(155);
  const run = await startPortlab(r, [SEED, MY_APP], ['--seed', '7']);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const keepAlive = new Agent();
  try {
    // 100 requests before any page is open: the page must show them, because the counts are the process's.
    for (let i = 0; i < 100; i++) await (await request(`http://${r.node}:30000/`, { dispatcher: keepAlive })).body.dump();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://${r.admin}/`);
    const state = run.portlab.proxier.state!;
    for (const id of ['nodeport-30000', 'nodeport-31000', 'service-port-8080', 'service-port-8081']) await page.getByTestId(id).first().waitFor();
    t.is(await page.getByTestId('target-port-5000').count(), 2);
    for (const pod of state.pods) t.true(await page.getByTestId(`pod-${pod.name}`).isVisible(), pod.name);
    t.regex((await page.getByTestId('status').textContent()) ?? '', /userspace proxy · nodePort hop: via-service · synced/);
    const cell = (id: string) => page.getByTestId(id);
    const countIs = (id: string, n: number) => page.waitForFunction(([tid, want]) => document.querySelector(`[data-testid="${tid}"]`)?.textContent === String(want), [id, n] as const, { timeout: 15_000 });
    await countIs('count-default/my-service:http/TCP', 100);

    // 150 more with the page open, at two ports and two layers: every flow animates, and no script fails.
    const oneShot = new Agent({ pipelining: 0 });
    for (let i = 0; i < 120; i++) await (await request(`http://${i % 2 ? r.node : r.service(1)}:${i % 2 ? 30000 : 8080}/`, { dispatcher: keepAlive })).body.dump();
    for (let i = 0; i < 30; i++) {
      const c = new Agent({ pipelining: 0 });
      await (await request(`http://${r.node}:31000/`, { dispatcher: c })).body.dump();
      await c.close();
    }
    await oneShot.close();
    await countIs('count-default/my-service:http/TCP', 220);
    await countIs('count-default/my-service:metrics/TCP', 30);
    // Every animated dot is gone once the traffic stops.
    await page.waitForFunction(() => document.querySelectorAll('circle.packet').length === 0, undefined, { timeout: 15_000 });
    t.deepEqual(errors, [], 'no page errors');

    // Shares are per Service port: each port's pods add up to 100%, and each port counts only its own flows.
    const pods = state.pods.map((p) => p.name);
    for (const [key, total] of [['default/my-service:http/TCP', 220], ['default/my-service:metrics/TCP', 30]] as const) {
      const counts = await Promise.all(pods.map(async (p) => Number(await cell(`pod-count-${key}-${p}`).textContent())));
      t.is(counts.reduce((a, b) => a + b, 0), total, key);
      const shares = await Promise.all(pods.map(async (p) => Number(/(\d+)%/.exec((await cell(`pod-share-${key}-${p}`).textContent()) ?? '')?.[1])));
      t.true(Math.abs(shares.reduce((a, b) => a + b, 0) - 100) <= 1, `${key}: ${shares.join(' + ')}`);
    }

    // A recent-traffic line shows the whole route, and wraps rather than being cut off.
    const line = page.getByTestId('log-line').filter({ hasText: `node ${r.node}:30000 → service ${r.service(1)}:8080 → pod my-app-` }).first();
    await line.waitFor();
    t.true(await line.evaluate((e) => e.scrollWidth <= e.clientWidth + 1), 'the line wraps inside its panel');
    // An L4 line names the protocol once (in the Service port) and says what it was, as the text log does.
    const l4 = (await page.getByTestId('log-line').filter({ hasText: `node ${r.node}:31000 →` }).first().textContent()) ?? '';
    t.regex(l4, /default\/my-service:metrics\/TCP connection /);
    t.notRegex(l4, /TCP TCP/);

    // A Service port shows the rules kube-proxy writes for it.
    await page.getByTestId('service-port-8080').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="rules"]')?.textContent?.includes('add element ip kube-proxy service-ips'), undefined, { timeout: 10_000 });
    await page.getByRole('button', { name: 'iptables' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="rules"]')?.textContent?.includes('-A KUBE-SERVICES'), undefined, { timeout: 10_000 });

    // A pod that is not ready is greyed out, as `routes -o wide` marks it.
    const unready = pods[0]!;
    const res = await request(`http://${r.admin}/api/pods/${unready}/unready`, { method: 'POST', headers: { 'x-portlab-client': 'test' } });
    t.is(res.statusCode, 200);
    await res.body.dump();
    await page.waitForFunction((name) => document.querySelector(`[data-testid="pod-${name}"]`)?.getAttribute('class')?.includes('notready'), unready, { timeout: 10_000 });
    t.regex((await page.getByTestId(`pod-${unready}`).textContent()) ?? '', /not ready/);
    // Its reason is drawn inside its box, in lines that fit.
    const fits = await page.evaluate((name) => {
      const box = document.querySelector(`[data-testid="pod-${name}"]`)!;
      const frame = box.querySelector('rect.frame')!.getBoundingClientRect();
      return [...box.querySelectorAll('text.note')].map((n) => n.getBoundingClientRect().right <= frame.right);
    }, unready);
    t.true(fits.length > 0 && fits.every(Boolean), `note lines inside the box: ${fits.join(',')}`);
    t.deepEqual(errors, [], 'no page errors');
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png') });
  } finally {
    await keepAlive.close();
    await browser.close();
    await run.close();
  }
});

test('a plain headless Chromium, with no live feed to wait for, renders the topology and takes the screenshot', async (t) => {
  if (browserMissing(t)) return;
  const r = range(156);
  const run = await startPortlab(r, [SEED, MY_APP]);
  try {
    await (await request(`http://${r.node}:30000/`)).body.dump();
    await waitFor(() => run.portlab.observers.dashboardStats().ports['default/my-service:http/TCP']?.count === 1, 'the request counted', 10_000);
    const dom = await headless(['--dump-dom', `http://${r.admin}/`]);
    t.is(dom.code, 0, dom.stderr);
    for (const pod of run.portlab.proxier.state!.pods) t.true(dom.stdout.includes(`data-testid="pod-${pod.name}"`), pod.name);
    t.true(dom.stdout.includes('data-testid="nodeport-30000"'));
    t.regex(dom.stdout, /data-testid="count-default\/my-service:http\/TCP">1</);
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'dashboard-headless.png');
    const png = await headless([`--screenshot=${shot}`, '--window-size=1280,800', `http://${r.admin}/`]);
    t.is(png.code, 0, `exit ${png.code}: ${png.stderr.slice(-2000)}`);
    t.true(statSync(shot).size > 20_000, 'a picture, not a blank page');
  } finally {
    await run.close();
  }
});

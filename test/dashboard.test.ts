// The dashboard in a real browser: Debian's Chromium driven by playwright-core. It must run in CI, never skip there.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { Agent, request } from 'undici';
import { MY_APP, ROOT, SEED, range, startPortlab } from './helpers/portlab.js';

const CHROMIUM = process.env.PORTLAB_CHROMIUM ?? '/usr/bin/chromium';

test('the dashboard draws the seed and its counters move with traffic at each layer', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) t.fail(`no browser at ${CHROMIUM}: .ci/run installs Debian's chromium`);
    else t.log(`no browser at ${CHROMIUM}; install it with: apt-get install -y chromium`);
    if (!process.env.CI) t.pass();
    return;
  }
  const { chromium } = await import('playwright-core');
  const r = range(155);
  const run = await startPortlab(r, [SEED, MY_APP]);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(`http://${r.admin}/`);
    const state = run.portlab.proxier.state!;
    // The seed's picture: nodePorts, ports, targetPorts and pods.
    for (const id of ['nodeport-30000', 'nodeport-31000', 'service-port-8080', 'service-port-8081']) await page.getByTestId(id).first().waitFor();
    t.is(await page.getByTestId('target-port-5000').count(), 2);
    t.is(await page.getByTestId('target-port-6000').count(), 2);
    for (const pod of state.pods) t.true(await page.getByTestId(`pod-${pod.name}`).isVisible(), pod.name);
    t.regex((await page.getByTestId('status').textContent()) ?? '', /synced/);

    const http = page.getByTestId('count-default/my-service:http/TCP');
    t.is(await http.textContent(), '0');
    // Traffic through each layer: node, service, and the L4 port.
    await (await request(`http://${r.node}:30000/`)).body.dump();
    await (await request(`http://${r.service(1)}:8080/`)).body.dump();
    // The table is redrawn on every event, so the wait looks the cell up each time.
    const countIs = (id: string, atLeast: number) =>
      page.waitForFunction(([tid, n]) => Number(document.querySelector(`[data-testid="${tid}"]`)?.textContent) >= Number(n), [id, atLeast] as const, { timeout: 10_000 });
    await countIs('count-default/my-service:http/TCP', 2);
    // L4 connections are counted when they close, so this one closes after its request (no keep-alive).
    const oneShot = new Agent({ pipelining: 0 });
    const conn = await request(`http://${r.node}:31000/`, { dispatcher: oneShot });
    await conn.body.dump();
    await oneShot.close();
    await countIs('count-default/my-service:metrics/TCP', 1);
    t.is(await http.textContent(), '2');
    const dir = path.join(ROOT, 'artifacts');
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, 'dashboard.png') });
  } finally {
    await browser.close();
    await run.close();
  }
});

// Reliability: live reload under load, invalid edits, pod kills, crashes mid-stream, floods, fuzzed input.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { Agent, request } from 'undici';
import { parseManifests } from '../src/manifest/load.js';
import { buildDesiredState } from '../src/model/desired-state.js';
import { runCli, startCli } from './helpers/cli.js';
import { CLUSTER, PLAN } from './helpers/plan.js';
import { FIXTURES, MY_APP, SEED, accepts, connectionOutcome, endOrReset, range, statusLine, startPortlab, tempManifest, waitFor } from './helpers/portlab.js';

function services(extraPort: boolean, otherPort: number, withThird: boolean): string {
  return `apiVersion: v1
kind: Service
metadata: {name: my-service}
spec:
  type: NodePort
  selector: {app: MyApp}
  ports:
    - {name: http, nodePort: 30000, port: 8080, targetPort: 5000}
    - {name: metrics, nodePort: 31000, port: 8081, targetPort: 6000}
${extraPort ? '    - {name: extra, nodePort: 30082, port: 8082, targetPort: 7000}\n' : ''}---
apiVersion: v1
kind: Service
metadata: {name: other}
spec:
  selector: {app: other}
  ports: [{name: tcp, port: ${otherPort}, targetPort: 5000}]
${withThird ? `---
apiVersion: v1
kind: Service
metadata: {name: third}
spec:
  type: NodePort
  selector: {app: third}
  ports: [{name: tcp, port: 7070, nodePort: 30070, targetPort: 5000}]
` : ''}`;
}

/** saveLikeAnEditor writes a temp file and renames it over the manifest, as editors do. */
async function saveLikeAnEditor(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.swp`);
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** streamUpload keeps one TCP connection busy for `ms`, then checks the pod saw every byte (sha256). */
async function streamUpload(host: string, port: number, ms: number): Promise<{ sent: string; seen: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const hash = createHash('sha256');
    let data = '';
    s.on('error', reject);
    s.on('data', (d) => (data += d));
    s.on('end', () => {
      const body = JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as { bodySha256: string };
      resolve({ sent: hash.digest('hex'), seen: body.bodySha256 });
    });
    s.write('POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
    const started = Date.now();
    const tick = setInterval(() => {
      const chunk = randomBytes(16 * 1024);
      hash.update(chunk);
      s.write(`${chunk.length.toString(16)}\r\n`);
      s.write(chunk);
      s.write('\r\n');
      if (Date.now() - started > ms) {
        clearInterval(tick);
        s.write('0\r\n\r\n');
      }
    }, 10);
  });
}

test('reload under load: no failed request on the unchanged port; added, changed and removed ports do as edited', async (t) => {
  const r = range(160);
  const m = await tempManifest(services(false, 9090, true));
  const cli = await startCli(['up', '-f', m.file, ...r.args, '--watch', '--quiet', '--drain-timeout', '1s']);
  const clients = Array.from({ length: 4 }, () => new Agent({ connections: 1 }));
  try {
    const otherIP = r.service(2);
    t.true(await accepts(otherIP, 9090));
    const stream = streamUpload(r.node, 31000, 2500);
    let ok = 0;
    let failed = 0;
    let edited = false;
    const load = clients.map(async (agent, c) => {
      for (let i = 0; i < 500; i++) {
        if (c === 0 && i === 100 && !edited) {
          edited = true;
          await saveLikeAnEditor(m.file, services(true, 9091, false));
        }
        try {
          const res = await request(`http://${r.node}:30000/load`, { dispatcher: agent });
          await res.body.dump();
          if (res.statusCode === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    });
    await Promise.all(load);
    t.is(failed, 0, 'zero failed requests on the unchanged port');
    t.is(ok, 2000);
    const result = await stream;
    t.is(result.seen, result.sent, 'the long-lived TCP stream kept flowing across the reload');
    await waitFor(() => cli.output().includes('reload:'), 'the reload to be reported');
    // added
    const added = await request(`http://${r.node}:30082/`);
    t.is(added.statusCode, 200);
    t.is(((await added.body.json()) as { port: number }).port, 7000);
    // changed: other moved from 9090 to 9091 on the same cluster IP
    t.true(await accepts(otherIP, 9091));
    await waitFor(async () => (await connectionOutcome(otherIP, 9090)) === 'refused', 'the old port to refuse', 3000);
    // removed: third's nodePort and service port refuse
    await waitFor(async () => (await connectionOutcome(r.node, 30070)) === 'refused', 'the removed nodePort to refuse', 3000);
    t.is(await connectionOutcome(r.service(3), 7070), 'refused');
    t.is(cli.output().match(/reload:/g)?.length, 1, 'one edit, one sync');
  } finally {
    await Promise.all(clients.map((a) => a.close()));
    t.is(await cli.stop(), 0);
    await m.cleanup();
  }
});

test('reloads in quick succession coalesce; an invalid edit keeps the running config and is marked in /healthz', async (t) => {
  const r = range(161);
  const m = await tempManifest(services(false, 9090, false));
  const cli = await startCli(['up', '-f', m.file, ...r.args, '--watch', '--quiet']);
  try {
    // Five saves in one burst (synchronous, so a busy test machine cannot spread them out).
    const { renameSync, writeFileSync } = await import('node:fs');
    for (let i = 0; i < 5; i++) {
      writeFileSync(`${m.file}.swp`, services(false, 9091 + i, false));
      renameSync(`${m.file}.swp`, m.file);
    }
    await waitFor(() => cli.output().includes('reload:'), 'the reload');
    await new Promise((res) => setTimeout(res, 400)); // give a second, uncoalesced reload the chance to show up
    t.is(cli.output().match(/reload:/g)?.length, 1, 'five saves, one sync');
    t.true(await accepts(r.service(2), 9095));

    await saveLikeAnEditor(m.file, (await readFile(m.file, 'utf8')).replace('nodePort: 31000', 'nodePort: 80'));
    // stderr arrives line by line: wait for the whole message, not just its first line.
    const message = new RegExp(`${m.file.replaceAll('.', '\\.')}:\\d+:\\d+: The Service "my-service" is invalid: spec\\.ports\\[1\\]\\.nodePort: Invalid value: 80`);
    await waitFor(() => message.test(cli.errors()) && /\nfix: /.test(cli.errors()), 'the failed reload to be printed with its position');
    t.regex(cli.errors(), /error: reload rejected; still serving the previous config: the manifests are invalid \(1 error\)\n/);
    t.notRegex(cli.errors(), /nothing was started/, 'traffic flows: nothing says it does not');
    const health = await request(`http://${r.admin}/healthz`);
    t.is(health.statusCode, 503);
    const lastError = ((await health.body.json()) as { lastError: string }).lastError;
    t.regex(lastError, /^reload rejected; still serving the previous config/);
    t.regex(lastError, /nodePort: Invalid value: 80/);
    const live = await request(`http://${r.admin}/livez`);
    t.is(live.statusCode, 503);
    await live.body.dump();
    const still = await request(`http://${r.node}:31000/`);
    t.is(still.statusCode, 200, 'the old config still serves');
    await still.body.dump();

    await saveLikeAnEditor(m.file, services(false, 9095, false));
    await waitFor(async () => (await request(`http://${r.admin}/healthz`)).statusCode === 200, 'healthz to recover after a good edit');
    t.pass();
  } finally {
    await cli.stop();
    await m.cleanup();
  }
});

test('pod kill under load: only that pod\'s in-flight requests fail; later requests go to the other replica; it comes back', async (t) => {
  const r = range(162);
  const run = await startPortlab(r, [SEED, MY_APP], ['--quiet', '--balance', 'round-robin']);
  const agent = new Agent({ connections: 20 });
  const abort = new AbortController();
  try {
    const pods = run.portlab.proxier.listPods();
    const [victim, survivor] = pods as [typeof pods[0], typeof pods[0]];
    const inFlight = (p: typeof victim) => p.counters.get('5000/TCP')!.inFlight;
    let settled = 0;
    // The pods hold these for ten minutes: only the kill (or the test's own abort) can end them.
    const pending = Array.from({ length: 12 }, () =>
      request(`http://${r.node}:30000/?delay=600000`, { dispatcher: agent, signal: abort.signal })
        .then(
          async (res) => ({ status: res.statusCode, pod: res.statusCode === 200 ? ((await res.body.json()) as { pod?: string }).pod : (await res.body.text(), undefined) }),
          () => ({ status: 0, pod: undefined }),
        )
        .finally(() => settled++),
    );
    await waitFor(() => inFlight(victim) + inFlight(survivor) === 12, 'all 12 requests to reach a pod', 30_000);
    t.is(inFlight(victim), 6, 'round-robin put half of the 12 on the victim');
    const kill = await runCli(['pod', 'kill', victim.spec.name, '--admin', r.admin, '--restart-delay', 'never']);
    t.is(kill.code, 0, kill.stderr);
    await waitFor(() => settled === 6, 'the killed pod\'s requests to end', 30_000);
    t.is(inFlight(survivor), 6, 'the survivor\'s requests are still in flight');
    // The endpoint is withdrawn at once: new requests go to the survivor.
    for (let i = 0; i < 10; i++) {
      const res = await request(`http://${r.node}:30000/`, { dispatcher: agent });
      t.is(((await res.body.json()) as { pod: string }).pod, survivor.spec.name);
    }
    abort.abort();
    const results = await Promise.all(pending);
    t.is(results.filter((x) => x.status === 502).length, 6, 'exactly the killed pod\'s in-flight requests failed, with 502');
    t.is(results.filter((x) => x.status === 0).length, 6, 'the survivor\'s were still running when the test ended them');
    // `pod start` brings it back, as its ReplicaSet would after a restart delay.
    const start = await runCli(['pod', 'start', victim.spec.name, '--admin', r.admin]);
    t.is(start.code, 0, start.stderr);
    await waitFor(async () => {
      const res = await request(`http://${victim.spec.ip}:5000/`);
      await res.body.dump();
      return res.statusCode === 200;
    }, 'the killed pod to come back', 30_000, 100);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(((await (await request(`http://${r.node}:30000/`, { dispatcher: agent })).body.json()) as { pod: string }).pod);
    t.is(seen.size, 2, 'the replacement takes traffic again');
  } finally {
    abort.abort();
    await agent.close();
    await run.close();
  }
});

test('a backend that crashes mid-stream: the L4 client sees a reset, not a clean end', async (t) => {
  const r = range(163);
  const run = await startPortlab(r, [SEED], ['--quiet']);
  try {
    const pod = run.portlab.proxier.listPods()[0]!;
    let received = 0;
    const s = net.connect({ host: r.node, port: 31000, allowHalfOpen: true });
    s.on('data', function onData(d: Buffer) {
      received += d.length;
      if (received > 1_000_000) {
        s.off('data', onData);
        void run.portlab.pod(pod.spec.name, 'kill', 60_000);
      }
    });
    s.write('GET /?size=500000000 HTTP/1.1\r\nHost: x\r\n\r\n');
    const { how: outcome, bytes } = await endOrReset(s);
    t.true(bytes < 500_000_000, 'the stream was cut short');
    t.true(['ECONNRESET', 'EPIPE'].includes(outcome), `the client saw: ${outcome}`);
  } finally {
    await run.close();
  }
});

test('connection flood: 2,000 connections against --max-connections 500 are refused fast, health answers, memory is bounded', async (t) => {
  const r = range(164);
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--quiet', '--max-connections', '500']);
  const sockets: net.Socket[] = [];
  try {
    const rssBefore = cli.rssBytes();
    // Batches of 250 keep within the listen backlog, so every attempt is accepted or refused, none left in SYN retry.
    const outcomes: ('closed' | 'open')[] = [];
    for (let batch = 0; batch < 8; batch++) {
      const results = await Promise.all(
        Array.from(
          { length: 250 },
          () =>
            new Promise<'closed' | 'open'>((resolve) => {
              const s = net.connect({ host: r.node, port: 31000 });
              sockets.push(s);
              const timer = setTimeout(() => resolve('open'), 1000);
              const closed = () => {
                clearTimeout(timer);
                resolve('closed');
              };
              s.on('error', closed);
              s.on('close', closed);
            }),
        ),
      );
      outcomes.push(...results);
    }
    const health = await request(`http://${r.admin}/healthz`);
    t.is(health.statusCode, 200, 'portlab stays responsive during the flood');
    await health.body.dump();
    const open = outcomes.filter((o) => o === 'open').length;
    const closed = outcomes.length - open;
    t.log(`open ${open}, refused ${closed}, RSS ${(cli.rssBytes() / 1048576).toFixed(0)} MiB (grew ${((cli.rssBytes() - rssBefore) / 1048576).toFixed(0)} MiB)`);
    t.is(open, 500, 'the listener holds exactly --max-connections');
    t.is(closed, 1500, 'the excess was closed within 1.5 s');
    t.true(cli.rssBytes() < 200 * 1024 * 1024, 'RSS stays under 200 MiB');
    const metrics = await (await request(`http://${r.admin}/metrics`)).body.text();
    t.regex(metrics, /portlab_downstream_cx_rejected_total\{service_port="default\/my-service:metrics\/TCP",layer="node",reason="max_connections"\} 1500/);
  } finally {
    for (const s of sockets) s.destroy();
    await cli.stop();
  }
});

/** mulberry32 is a small seeded PRNG, so every fuzz run mutates the same way and a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(text: string, rand: () => number): string {
  const lines = text.split('\n');
  const pick = (n: number) => Math.floor(rand() * n);
  switch (pick(4)) {
    case 0: {
      const b = Buffer.from(text);
      for (let i = 0, n = 1 + pick(4); i < n; i++) b[pick(b.length)] = pick(256);
      return b.toString('latin1');
    }
    case 1:
      lines.splice(pick(lines.length), 1 + pick(3));
      return lines.join('\n');
    case 2: // swap a scalar's type
      return lines.map((l) => (rand() < 0.2 ? l.replace(/: (\d+)$/, ': "$1"').replace(/: ([a-zA-Z][\w-]*)$/, ': [$1]') : l)).join('\n');
    default: // swap a mapping for a list or a number
      return lines.map((l) => (rand() < 0.15 ? l.replace(/:\s*$/, ': 7') : l)).join('\n');
  }
}

test('fuzzed manifests: 500 mutations never crash or hang the manifest layer; validate exits 0 or 1 with a message', async (t) => {
  const seeds = [path.join(FIXTURES, 'my-service.yml'), path.join(FIXTURES, 'my-app.yml'), path.join(FIXTURES, 'valid', 'kubectl-get-list.yml'), path.join(FIXTURES, 'valid', 'mixed-kinds.yml')];
  const texts = await Promise.all(seeds.map((f) => readFile(f, 'utf8')));
  const rand = prng(20261126);
  let invalid = 0;
  const samples: string[] = [];
  for (let i = 0; i < 500; i++) {
    const text = mutate(texts[i % texts.length]!, rand);
    if (i % 50 === 0) samples.push(text);
    let outcome: string;
    try {
      const parsed = parseManifests([{ file: 'fuzz.yml', text }], CLUSTER);
      if (!parsed.manifests) outcome = parsed.problems.length > 0 ? 'invalid' : 'no problems and no manifests';
      else {
        const built = buildDesiredState(parsed.manifests, PLAN);
        outcome = built.state ? 'valid' : built.problems.length > 0 ? 'invalid' : 'no problems and no state';
      }
    } catch (err) {
      outcome = `crash: ${(err as Error).stack}`;
    }
    if (outcome === 'invalid') invalid++;
    if (outcome !== 'valid' && outcome !== 'invalid') t.fail(`mutation ${i}: ${outcome}\n${text}`);
  }
  t.log(`${invalid} of 500 mutations invalid, ${500 - invalid} still valid`);
  t.true(invalid > 100, 'the mutations do break manifests');
  // The real binary on a sample: exit 0 or 1, and a file:line:col message on 1.
  const m = await tempManifest('');
  try {
    for (const text of samples) {
      await writeFile(m.file, text);
      const result = await runCli(['validate', '-f', m.file], undefined, 10_000);
      t.true(result.code === 0 || result.code === 1, `exit ${result.code}: ${result.stderr}`);
      if (result.code === 1) t.regex(result.stderr, /:\d+:\d+: /);
    }
  } finally {
    await m.cleanup();
  }
});

test('random bytes into every L4 and L7 listener: the process stays up, and L7 answers 400', async (t) => {
  const r = range(165);
  const run = await startPortlab(r, [SEED], ['--quiet']);
  try {
    const rand = prng(7);
    const junk = () => Buffer.from(Array.from({ length: 4096 }, () => Math.floor(rand() * 256)));
    const answers = (host: string, port: number) => statusLine(host, port, junk(), { timeoutMs: 3000 });
    for (const [host, port] of [[r.node, 30000], [r.service(1), 8080]] as const) t.regex(await answers(host, port), /^HTTP\/1\.1 400/, `L7 ${host}:${port}`);
    // L4 forwards the bytes as they are; the stand-in pod behind it (HTTP) rejects them.
    for (const [host, port] of [[r.node, 31000], [r.service(1), 8081]] as const) t.regex(await answers(host, port), /^HTTP\/1\.1 400|^closed|^reset/, `L4 ${host}:${port}`);
    const health = await request(`http://${r.admin}/healthz`);
    t.is(health.statusCode, 200);
    await health.body.dump();
    const res = await request(`http://${r.node}:30000/`);
    t.is(res.statusCode, 200, 'still serving');
    await res.body.dump();
  } finally {
    await run.close();
  }
});

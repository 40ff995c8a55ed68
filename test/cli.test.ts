// The real binary: exit codes, a port in use, a slow reader, and signals.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { selectorless, tcpBackend } from './helpers/backends.js';
import { runCli, startCli } from './helpers/cli.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { hasLoopback6 } from '../src/cli/options.js';
import { CLI, ROOT, SEED, isClosed, range, tempManifest, waitFor } from './helpers/portlab.js';

test('a nodePort in use: exit 3, a message naming Service, field and address, and nothing left listening', async (t) => {
  const r = range(120);
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(31000, r.node, () => resolve()));
  try {
    const result = await runCli(['up', '-f', SEED, ...r.args]);
    t.is(result.code, 3);
    t.regex(result.stderr, new RegExp(`cannot listen on ${r.node.replaceAll('.', '\\.')}:31000/TCP for Service default/my-service on node-1 spec\\.ports\\[metrics\\]\\.nodePort: the address is already in use`));
    t.regex(result.stderr, /fix: Stop the process that holds the port/);
    // Nothing of this run is left: the pod, the service and the other nodePort all refuse.
    t.true(await isClosed(r.pod(1), 5000));
    t.true(await isClosed(r.service(1), 8080));
    t.true(await isClosed(r.node, 30000));
    t.true(await isClosed(r.admin.split(':')[0]!, 10249));
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});

// Root may bind port 80, so as root the real binary runs without CAP_NET_BIND_SERVICE: the kernel then answers EACCES
// exactly as it does for an unprivileged user (net.ipv4.ip_unprivileged_port_start is 1024 here).
const dropBind = process.getuid?.() === 0 ? ['setpriv', '--bounding-set', '-net_bind_service', '--inh-caps', '-net_bind_service'] : [];

test('a privileged port: exit 3 with how to fix it', async (t) => {
  const r = range(121);
  const m = await tempManifest(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
`);
  try {
      const result = await runCli(['up', '-f', m.file, ...r.args, '--admin', 'off'], undefined, 20_000, dropBind);
    t.is(result.code, 3, result.stderr);
    t.regex(result.stderr, new RegExp(`cannot listen on ${r.service(1).replaceAll('.', '\\.')}:80/TCP for Service default/web spec\\.ports\\[http\\]\\.port: port 80 is privileged \\(below 1024\\)`));
    t.regex(result.stderr, /fix: Ports below 1024 need root\. Serve them at port \+ N with --port-offset N/);
  } finally {
    await m.cleanup();
  }
});

test('--port-offset: port 80 and targetPort 80 are served at 8080 without the right to bind them, and the table says so', async (t) => {
  const r = range(181);
  const m = await tempManifest(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80, nodePort: 30080}]
`);
  const cli = await startCli(['up', '-f', m.file, ...r.args, '--port-offset', '8000', '--drain-timeout', '0'], 20_000, dropBind);
  try {
    t.regex(cli.output(), new RegExp(`service ${r.service(1).replaceAll('.', '\\.')}:8080 \\(port 80\\) → pod ${r.pod(1).replaceAll('.', '\\.')}:8080 \\(targetPort 80\\)`));
    t.regex(cli.output(), new RegExp(`service: curl -s http://${r.service(1).replaceAll('.', '\\.')}:8080/`));
    for (const url of [`http://${r.node}:30080/`, `http://${r.service(1)}:8080/`, `http://${r.pod(1)}:8080/`]) {
      const res = await request(url);
      const body = (await res.body.json()) as { pod: string };
      t.is(res.statusCode, 200, url);
      t.is(body.pod, 'web-standin', url);
    }
  } finally {
    t.is(await cli.stop(), 0, cli.errors());
    await m.cleanup();
  }
});

test('exit codes: 2 for a usage error, 1 for an invalid manifest, 0 for validate', async (t) => {
  t.is((await runCli(['up'])).code, 2);
  t.is((await runCli(['up', '-f', SEED, '--mode', 'fast'])).code, 2);
  t.regex((await runCli(['up', '-f', SEED, '--mode', 'fast'])).stderr, /--mode "fast": expected one of auto, tcp, http/);
  const bad = await runCli(['validate', '-f', 'fixtures/invalid/nodeport-out-of-range.yml']);
  t.is(bad.code, 1);
  const good = await runCli(['validate', '-f', SEED]);
  t.is(good.code, 0);
  t.regex(good.stdout, /valid: 1 Service\(s\), 2 port\(s\), 1 stand-in pod\(s\)/);
});

test('stdin: `-f -` reads the manifest from standard input', async (t) => {
  const result = await runCli(['routes', '-f', '-', '--node-address-v6', 'off'], `apiVersion: v1
kind: Service
metadata: {name: from-stdin}
spec:
  type: NodePort
  selector: {app: x}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
`);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /from-stdin\/80 {2}L4 {2}node 127\.0\.0\.1:30080 → service 127\.10\.0\.1:80 → pod 127\.244\.0\.1:8080/);
});

test('SIGTERM drains and exits 0; up prints the route and curl lines for every layer', async (t) => {
  const r = range(122);
  const cli = await startCli(['up', '-f', SEED, ...r.args]);
  try {
    const out = cli.output();
    t.true(out.includes(`my-service/http  L7  node ${r.node}:30000 → service ${r.service(1)}:8080 → pod ${r.pod(1)}:5000`));
    t.true(out.includes(`my-service/metrics  L4  node ${r.node}:31000 → service ${r.service(1)}:8081 → pod ${r.pod(1)}:6000`));
    for (const url of [`http://${r.node}:30000/`, `http://${r.service(1)}:8080/`, `http://${r.pod(1)}:5000/`]) t.true(out.includes(`curl -s ${url}`), url);
    const res = await request(`http://${r.node}:30000/`);
    t.is(res.statusCode, 200);
    await res.body.dump();
  } finally {
    t.is(await cli.stop('SIGTERM'), 0);
  }
  t.true(await isClosed(r.node, 30000));
});

test('a client that never reads: backpressure keeps portlab memory flat', async (t) => {
  const r = range(123);
  let written = 0;
  const LIMIT = 512 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'z');
  const backend = await tcpBackend(r.backend(1), 5000, (s) => {
    const pump = () => {
      while (written < LIMIT && !s.destroyed) {
        written += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  const m = await tempManifest(selectorless('flood', [{ name: 'tcp', port: 8080, targetPort: 5000, nodePort: 30000 }], [r.backend(1)]));
  const cli = await startCli(['up', '-f', m.file, ...r.args, '--quiet']);
  const client = net.connect({ host: r.node, port: 30000 });
  client.on('error', () => {});
  try {
    const before = cli.rssBytes();
    client.pause(); // never read
    // Wait until the backend is blocked: its count stops growing.
    let last = -1;
    await waitFor(async () => {
      await new Promise((res) => setTimeout(res, 300));
      const stalled = written === last && written > 0;
      last = written;
      return stalled;
    }, 'the backend to be held back', 15_000, 0);
    const growth = cli.rssBytes() - before;
    t.log(`backend wrote ${(written / 1048576).toFixed(1)} MiB before it was held back; portlab RSS grew ${(growth / 1048576).toFixed(1)} MiB`);
    t.true(written < 64 * 1024 * 1024, 'the backend was held back well before 64 MiB');
    t.true(growth < 64 * 1024 * 1024, 'portlab buffered less than 64 MiB');
  } finally {
    client.destroy();
    await cli.stop();
    await backend.close();
    await m.cleanup();
  }
});

test('the fd limit is raised to the hard limit and reported at start', async (t) => {
  const r = range(124);
  // prlimit starts portlab with a low soft limit and execs it; portlab (and Node) raise it to the hard limit.
  // One SIGTERM to portlab's own PID once it is ready: no timer races its start-up.
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--max-connections', '100', '--drain-timeout', '0', '--verbose'], 20_000, ['prlimit', '--nofile=512:8192']);
  const limits = readFileSync(`/proc/${cli.child.pid}/limits`, 'utf8');
  t.is(await cli.stop(), 0, cli.errors());
  t.regex(limits, /Max open files\s+8192\s+8192/, 'the running process has its soft limit raised');
  t.regex(cli.output(), /fd limit: 8192( \(raised from 512\))? · --max-connections 100 × 4 listeners × 2 fds = 800/);
});

test('--addresses shared: one address for every layer; a clash fails at start naming both owners', async (t) => {
  const r = range(125);
  const shared = ['--addresses', 'shared', '--node-address', r.node, '--admin', 'off'];
  const ok = await runCli(['routes', '-f', SEED, ...shared]);
  t.regex(ok.stdout, new RegExp(`node ${r.node.replaceAll('.', '\\.')}:30000 → service ${r.node.replaceAll('.', '\\.')}:8080 → pod ${r.node.replaceAll('.', '\\.')}:5000`));
  // Two replicas both want 5000 on the one address.
  const clash = await runCli(['up', '-f', SEED, '-f', 'fixtures/my-app.yml', ...shared]);
  t.is(clash.code, 3);
  t.regex(clash.stderr, new RegExp(`${r.node.replaceAll('.', '\\.')}:5000/TCP is wanted twice \\(--addresses shared puts every layer on one address\\): by pod default/my-app-\\w+-\\w+ containerPort 5000 \\(http\\), and by pod default/my-app-\\w+-\\w+ containerPort 5000 \\(http\\)`));
  t.true(await isClosed(r.node, 30000), 'nothing was started');
});

test("portlab's Node flags are the same in the CLI's shebang, `npm start` and the running process", async (t) => {
  const flags = NODE_FLAGS.join(' ');
  t.is(readFileSync(CLI, 'utf8').split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
  const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> };
  t.true(pkg.scripts.start!.startsWith(`exec node ${flags} dist/src/cli/main.js `), pkg.scripts.start);
  // Started through its shebang, as `npx portlab` does: the flags reach the process.
  const r = range(127);
  const cli = await startCli(['up', '-f', SEED, ...r.args], 20_000, [], true);
  try {
    const argv = readFileSync(`/proc/${cli.child.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of NODE_FLAGS) t.true(argv.includes(flag), argv.join(' '));
  } finally {
    t.is(await cli.stop(), 0);
  }
});

test('SIGTERM to `npm start` reaches portlab: it drains and exits, and is not left running without its parent', async (t) => {
  // npm passes the signal to the script's shell; `exec` makes that shell portlab itself. Without it the shell died and
  // portlab kept running, orphaned. --ignore-scripts skips the prestart build: the tests run on the built dist.
  const r = range(102);
  const npm = spawn('npm', ['start', '--ignore-scripts', '--', ...r.args, '--drain-timeout', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout.on('data', (d) => (output += d));
  npm.stderr.on('data', (d) => (output += d));
  const npmExit = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  let portlabPid: number | undefined;
  const started: number[] = [];
  try {
    await waitFor(() => output.includes('ready:'), '`npm start` to print ready', 20_000);
    // The script's process is npm's only child: portlab, once the shell has exec'd it.
    const children = childrenOf(npm.pid!);
    started.push(...children, ...children.flatMap(childrenOf)); // cleaned up below, should the test fail
    t.is(children.length, 1, output);
    portlabPid = children[0]!;
    const argv = readFileSync(`/proc/${portlabPid}/cmdline`, 'utf8').split('\0');
    t.true(argv[0]!.endsWith('node') && argv.some((a) => a.endsWith('main.js')), `npm's child is portlab, not a shell: ${argv.join(' ')}`);
    npm.kill('SIGTERM');
    t.is(await npmExit, 0, output);
    await waitFor(() => !isAlive(portlabPid!), `portlab (PID ${portlabPid}) to exit`, 5_000);
    t.regex(output, /SIGTERM: draining/);
    t.true(await isClosed(r.node, 30000), 'nothing listens after the drain');
  } finally {
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
});

function childrenOf(pid: number): number[] {
  const list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return list ? list.split(' ').map(Number) : [];
}

/** isAlive: the PID runs and is not a zombie waiting for its parent to reap it. */
function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

test('two SIGTERMs at once (as timeout(1) sends them, to the PID and its group) still exit 0', async (t) => {
  // Before, the second signal could land while Node tore down its signal handlers, and the run ended with 143.
  const r = range(128);
  const cli = await startCli(['up', '-f', SEED, ...r.args, '--drain-timeout', '0']);
  const exited = new Promise<number | null>((resolve) => cli.child.once('exit', (code) => resolve(code)));
  cli.child.kill('SIGTERM');
  cli.child.kill('SIGTERM');
  t.is(await exited, 0, cli.errors());
});

test('`npx portlab`, the README\'s way to run it on your own manifests, runs portlab with its Node flags', async (t) => {
  const r = range(103);
  const npx = spawn('npx', ['--no-install', 'portlab', 'up', '-f', SEED, ...r.args, '--drain-timeout', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npx.stdout.on('data', (d) => (output += d));
  npx.stderr.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => npx.once('exit', () => resolve()));
  const started: number[] = [];
  try {
    await waitFor(() => output.includes('ready:'), '`npx portlab` to print ready', 30_000);
    // npx runs the bin through a shell or directly, depending on npm's version: look at every descendant.
    const all: number[] = [];
    const walk = (pid: number) => {
      for (const c of childrenOf(pid)) {
        all.push(c);
        walk(c);
      }
    };
    walk(npx.pid!);
    started.push(...all);
    const portlab = all.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.endsWith('main.js') || a.endsWith('/portlab')));
    t.truthy(portlab, output);
    const argv = readFileSync(`/proc/${portlab}/cmdline`, 'utf8').split('\0');
    for (const flag of NODE_FLAGS) t.true(argv.includes(flag), argv.join(' '));
    process.kill(portlab!, 'SIGTERM');
    await exited;
  } finally {
    if (npx.exitCode === null && npx.signalCode === null) npx.kill('SIGKILL');
    for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
});

test('a first run prints nothing the README does not show: every line of the seed\'s start-up is in its quick start', async (t) => {
  if (!hasLoopback6()) {
    if (process.env.CI) t.fail('CI must have ::1 on its loopback: the README shows the nodePorts on [::1]');
    else t.log('this host has no ::1, and the README shows the nodePorts on [::1]: nothing to compare');
    return;
  }
  const r = range(105);
  // The README's run uses the default addresses; this one its own range, mapped back line by line.
  const cli = await startCli(['up', '-f', 'fixtures/my-service.yml', ...r.args, '--node-address-v6', '::1']);
  try {
    const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
    const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## The three layers'));
    const shown = (line: string) =>
      line
        .replaceAll(`${r.node}:`, '127.0.0.1:')
        .replaceAll(r.admin, '127.0.0.1:10249')
        .replace(/127\.105\.10\.(\d+)/g, '127.10.0.$1')
        .replace(/127\.105\.244\.(\d+)/g, '127.244.0.$1')
        .replace(/up in [\d.]+ ms/, 'up in N ms');
    const expected = new Set(quickStart.split('\n').map((l) => l.replace(/up in [\d.]+ ms/, 'up in N ms')));
    const lines = `${cli.errors()}${cli.output()}`.split('\n').filter((l) => l.trim() !== '');
    t.true(lines.length >= 10, lines.join('\n'));
    for (const line of lines) t.true(expected.has(shown(line)), `not in the README's quick start: ${shown(line)}`);
  } finally {
    t.is(await cli.stop(), 0);
  }
});

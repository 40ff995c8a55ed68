#!/usr/bin/env -S node --initial-old-space-size=64
// main.ts — the CLI, top to bottom: parse → load → start → print → wait for a signal → drain → exit.
import { readFileSync } from 'node:fs';
import { PortlabError, isPortlabError } from '../errors.js';
import { CLIENT_HEADER } from '../observe/admin.js';
import { planFromFiles } from '../model/plan.js';
import { Portlab } from '../runtime.js';
import { hostsLines, routeLines, routesJson } from './routes-table.js';
import { parseOptions, USAGE, type Options } from './options.js';
import { rulesCommand, traceCommand } from './rules.js';
import { watchManifests } from './watch.js';
import { addHosts, removeHosts } from './hosts.js';
import { describeFdLimit, raiseFdLimit } from './fd-limit.js';
import { ConnectionBudget } from '../net/budget.js';

const out = (line = '') => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  switch (options.command) {
    case 'help':
      out(USAGE);
      return 0;
    case 'version':
      out(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
      return 0;
    case 'validate':
      return validate(options);
    case 'routes':
      return routes(options);
    case 'rules':
      return rulesCommand(options, out, err);
    case 'trace':
      return traceCommand(options, out);
    case 'bench': {
      const { runBench } = await import('../bench/run.js');
      return runBench(options);
    }
    case 'pod':
      return podCommand(options);
    case 'up':
      return up(options);
  }
}

async function validate(options: Options): Promise<number> {
  const state = await planFromFiles(options);
  for (const note of state.notes) err(`note: ${note}`);
  for (const w of state.warnings) err(`warning: ${w}`);
  const ports = state.services.reduce((n, s) => n + s.ports.length, 0);
  out(`valid: ${state.services.length} Service(s), ${ports} port(s), ${state.pods.length} stand-in pod(s) in ${options.files.join(', ')}`);
  return 0;
}

async function routes(options: Options): Promise<number> {
  const state = await planFromFiles(options);
  if (options.hosts) {
    for (const line of hostsLines(state)) out(line);
    return 0;
  }
  if (options.output === 'json') {
    out(JSON.stringify(routesJson(state, options.nodeportHop), null, 2));
    return 0;
  }
  for (const note of state.notes) err(`note: ${note}`);
  for (const w of state.warnings) err(`warning: ${w}`);
  for (const line of routeLines(state, { nodeportHop: options.nodeportHop, wide: options.output === 'wide' })) out(line);
  return 0;
}

async function podCommand(options: Options): Promise<number> {
  const [verb, name] = options.positionals;
  if (!['kill', 'start', 'ready', 'unready'].includes(verb ?? '') || !name) throw new PortlabError('PORTLAB_USAGE', 'usage: portlab pod kill|start|ready|unready NAME [--restart-delay DUR|never] [--admin ADDR:PORT]');
  if (!options.admin) throw new PortlabError('PORTLAB_USAGE', `portlab pod ${verb} talks to a running portlab through its admin listener; --admin off leaves nothing to talk to`);
  const { request } = await import('undici');
  const restart = verb === 'kill' && options.restartDelayMs !== undefined ? `?restartAfter=${Number.isFinite(options.restartDelayMs) ? options.restartDelayMs : 'never'}` : '';
  const url = `http://${options.admin.host}:${options.admin.port}/api/pods/${encodeURIComponent(name)}/${verb}${restart}`;
  let res;
  try {
    res = await request(url, { method: 'POST', headers: { [CLIENT_HEADER]: 'portlab-cli' } });
  } catch (e) {
    throw new PortlabError('PORTLAB_USAGE', `no portlab answers at ${options.admin.host}:${options.admin.port} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, {
      fix: 'Start `portlab up` first, or pass the --admin address it was started with.',
    });
  }
  const body = (await res.body.json()) as { ok: boolean };
  if (!body.ok) {
    err(`no stand-in pod named ${name}: \`portlab routes -o wide\` lists them`);
    return 1;
  }
  const back = options.restartDelayMs === undefined ? 'shortly' : Number.isFinite(options.restartDelayMs) ? `in ${options.restartDelayMs} ms` : 'only with `portlab pod start`';
  const said = { kill: `killed; its workload brings it back ${back}`, start: 'started again', ready: 'ready: its endpoints take traffic', unready: 'not ready: its endpoints are withdrawn' };
  out(`pod ${name} ${said[verb as keyof typeof said]}`);
  return 0;
}

/** syncMs prints a sync's duration with the digits that matter: a one-Service reload takes tens of microseconds. */
const syncMs = (ms: number) => ms.toFixed(ms < 1 ? 3 : ms < 10 ? 1 : 0);

async function up(options: Options): Promise<number> {
  const fdLimit = raiseFdLimit();
  // Every listener together takes no more connections than the descriptor limit can hold.
  if (fdLimit && Number.isFinite(fdLimit.soft)) options.budget = ConnectionBudget.fromFdLimit(fdLimit.soft);
  const { portlab, state, summary } = await Portlab.start(options);
  for (const note of state.notes) err(`note: ${note}`);
  for (const w of state.warnings) err(`warning: ${w}`);
  if (summary.kernel) {
    const where = summary.kernel.mode === 'nftables' ? 'table ip portlab' : 'chains PORTLAB-* of the nat and filter tables';
    out(`portlab: ${summary.podsStarted} stand-in pod(s) up; kernel: ${summary.kernel.mode} translates every Service address (kube-proxy's rules in ${where}, applied in ${summary.kernel.durationMs.toFixed(0)} ms); \`portlab rules --proxy-mode ${summary.kernel.mode}\` prints them`);
  } else out(`portlab: ${summary.opened} listeners and ${summary.podsStarted} stand-in pod(s) up in ${syncMs(summary.durationMs)} ms (nodePort hop: ${options.nodeportHop}, balance: ${options.balance})`);
  const kernel = summary.kernel !== undefined;
  for (const note of portlab.kernelNotes) err(`note: ${note}`);
  for (const line of routeLines(state, { nodeportHop: options.nodeportHop, tryIt: true, kernel })) out(line);
  if (portlab.admin && options.admin) out(`admin:   http://${options.admin.host}:${options.admin.port}/  (dashboard, /metrics, /healthz)`);
  const fdLine = describeFdLimit(fdLimit, portlab.proxier.openListeners, options.maxConnections, options.budget?.limit);
  if (options.verbose || fdLine.includes('exceeds')) out(fdLine);
  let hostsWritten = false;
  if (options.writeHosts) {
    try {
      await addHosts(options.hostsFile, hostsLines(state));
    } catch (e) {
      await portlab.close(0); // nothing is left half-started
      throw e;
    }
    hostsWritten = true;
    out(`hosts:   wrote ${state.services.filter((s) => s.clusterIP).length} name(s) to ${options.hostsFile}; removed on exit`);
  }
  const stopWatching = options.watch
    ? await watchManifests(options.files, async () => {
        const result = await portlab.reload();
        if (result.ok) {
          const s = result.summary;
          out(`reload: ${s.opened} opened, ${s.closed} closed, ${s.kept} kept, pods +${s.podsStarted}/-${s.podsStopped} in ${syncMs(s.durationMs)} ms`);
          for (const line of routeLines(result.state, { nodeportHop: options.nodeportHop, kernel })) out(line);
        } else printError(result.error, options.debug);
      })
    : () => {};
  // Signal handlers go in before "ready" is printed: a supervisor that waits for it and then sends SIGTERM must find
  // them there, or the default action ends portlab without a drain.
  const drained = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        err(`${signal} again: exiting now`);
        process.exit(0);
      }
      stopping = true;
      err(`${signal}: draining for up to ${options.drainTimeoutMs} ms`);
      stopWatching();
      const hosts = hostsWritten ? removeHosts(options.hostsFile).catch(() => {}) : Promise.resolve();
      // Exit here rather than by letting the loop empty: Node's teardown restores the default signal action, and a
      // second SIGTERM landing then (timeout(1) signals the PID and its group) would end the drained process with 143.
      void Promise.all([hosts, portlab.close()]).then(() => {
        resolve(0);
        process.exit(0);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A closed terminal sends SIGHUP: drain and clean up as for SIGTERM, rather than die with the hosts block left in.
    process.on('SIGHUP', () => stop('SIGHUP'));
  });
  out(`ready: forwarding. Ctrl-C drains and exits.`);
  return drained;
}

function printError(e: unknown, debug: boolean): void {
  if (isPortlabError(e)) {
    for (const d of e.details) err(d);
    err(`error: ${e.message}`);
    err(`fix: ${e.fix}`);
  } else {
    err(`error: ${(e as Error)?.message ?? String(e)}`);
  }
  if (debug && e instanceof Error && e.stack) err(e.stack);
}

// A command is over when main settles: exit then, even if a read of a pipe that never ended is still pending in the
// thread pool. Output to a pipe may still be queued (a reader slower than the writer, past the pipe's 64 KiB), so
// exit once stdout and stderr have taken everything written before.
function exit(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (e: unknown) => {
    const debug = process.argv.includes('--debug');
    printError(e, debug);
    exit(isPortlabError(e) ? e.exitCode : 1);
  },
);
